"""Running a sweep's jobs: on this machine (a pool of processes) or on Slurm (submitit).

A job is one ``factdyn train`` command line: a new run, or ``--resume`` of one a crash or a
kill left behind; a finished run is skipped. Both launchers run the same :func:`run_job`, so
the Slurm path is the local one inside an array task (with ``torchrun`` for several GPUs).
No scheduling of our own: the local pool is :mod:`concurrent.futures`, Slurm is submitit.

Every job's process starts a session (a process group) of its own, so that stopping it
reaches what it started (``torchrun``'s workers). An interrupted driver (SIGINT, SIGTERM:
:class:`Interrupted`) stops its local jobs, process trees and all, starts none of the queued
ones, and cancels its Slurm jobs; a driver killed outright (SIGKILL) still takes its jobs
with it (each child gets SIGTERM when its parent dies, Linux's ``PR_SET_PDEATHSIG``).
``--launcher slurm`` needs Slurm (:func:`require_slurm`): submitit's own fallback to a local
executor is reached only by asking for it (``test_executor``: the tests).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from factdyn.config import RunConfig, dump_config
from factdyn.errors import DataError
from factdyn.files import write_text_atomic
from factdyn.rundir import run_status, steps_trained

T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    name: str
    run_dir: str
    config_file: str
    log_file: str
    threads: int | None = None  # torch threads (local jobs share the cores)
    processes: int = 1  # torchrun processes (GPUs of a Slurm task)
    steps: int = 0  # the run's planned updates (the progress bar's share of it)


def write_job(
    out: Path,
    name: str,
    run_dir: Path,
    cfg: RunConfig,
    threads: int | None = None,
    processes: int = 1,
) -> Job:
    """The job of run ``name``, its files under ``out``: the configuration a new run starts
    from in ``configs/NAME.yaml`` (written now), its output in ``logs/NAME.log``. A file
    already there that is not this run's (another configuration; a log that does not begin
    with a training command, as :func:`run_job` begins it) is refused, not replaced or appended to."""
    config, log = out / "configs" / f"{name}.yaml", out / "logs" / f"{name}.log"
    text = dump_config(cfg)
    if config.is_file() and config.read_text(encoding="utf-8") != text:
        raise DataError(
            f"{config}: exists and is not run {name}'s configuration; give another --out"
        )
    first = log.read_text(encoding="utf-8").partition("\n")[0] if log.is_file() else None
    if first is not None and not (first.startswith("$ ") and " -m factdyn train " in first):
        raise DataError(f"{log}: exists and is not run {name}'s log; give another --out")
    write_text_atomic(config, text)
    return Job(name, str(run_dir), str(config), str(log), threads, processes, cfg.train.steps)


def local_threads(at_once: int) -> int:
    """Torch threads for each of ``at_once`` local jobs: the cores shared among them."""
    return max(1, (os.cpu_count() or 1) // max(1, at_once))


def command(job: Job) -> list[str]:
    """The ``factdyn train`` command line of ``job`` (resuming a started run)."""
    if run_status(job.run_dir) == "new":
        args = ["train", job.config_file, "--out", job.run_dir]
    else:
        args = ["train", "--resume", job.run_dir]
    if job.processes > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={job.processes}", "-m", "factdyn", *args]  # fmt: skip
    return [sys.executable, "-m", "factdyn", *args]


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM when the sweep that started it dies, so a
    killed sweep leaves no training running on (and holding its run's lock)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


GRACE_S = 10.0  # seconds a stopped job has between SIGTERM and SIGKILL


class Interrupted(BaseException):
    """The driver got SIGINT or SIGTERM. Raised once its jobs are stopped (local) or
    cancelled (Slurm), with each job's state then (``state``: done, stopped, cancelled,
    waiting = never started, failed: ...; None when no job had been launched). A
    BaseException, as KeyboardInterrupt is: no ``except Exception`` swallows it."""

    def __init__(
        self, signal_name: str, state: dict[str, str] | None = None, launcher: str = "local"
    ) -> None:
        super().__init__(signal_name)
        self.signal_name, self.state, self.launcher = signal_name, state, launcher

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal: 130 (SIGINT), 143 (SIGTERM)."""
        return 128 + signal.Signals[self.signal_name].value


def signal_name(e: BaseException) -> str:
    """The signal behind an interruption (KeyboardInterrupt: SIGINT)."""
    return e.signal_name if isinstance(e, Interrupted) else "SIGINT"


@contextlib.contextmanager
def _handling(signals: Sequence[int], handler) -> Iterator[None]:
    """``handler`` for ``signals`` inside the block (in the main thread; elsewhere, where
    Python delivers no signal, nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def sigterm_interrupts() -> contextlib.AbstractContextManager[None]:
    """Inside the block SIGTERM raises :class:`Interrupted`, as SIGINT raises
    KeyboardInterrupt, so that a terminated driver stops its jobs before it exits."""

    def raise_interrupted(signum, frame) -> None:
        raise Interrupted("SIGTERM")

    return _handling([signal.SIGTERM], raise_interrupted)


def require_slurm() -> None:
    """Refuse ``--launcher slurm`` where Slurm cannot be reached: submitit would fall back to
    running the grid on this machine."""
    try:
        import submitit
    except ImportError:
        raise DataError("--launcher slurm needs submitit: pip install submitit") from None
    missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
    if missing or submitit.SlurmExecutor.affinity() <= 0:  # submitit's own detection
        raise DataError(
            f"--launcher slurm: no Slurm on this machine ({' and '.join(missing) or 'srun'} "
            "not on PATH); run the command on a Slurm login node, or use --launcher local"
        )


def _tree(pid: int) -> list:
    """The process ``pid`` and its descendants (psutil processes), or [] if it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _alive(proc) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _send(procs: list, popens: Sequence[subprocess.Popen], sig: int) -> None:
    """``sig`` to each psutil process (pid reuse is checked) and to the process group of each
    started process not yet reaped (whose pid, hence group id, is still its own)."""
    import psutil

    for p in popens:
        if p.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, sig)
    for q in procs:
        with contextlib.suppress(psutil.Error):
            q.send_signal(sig)


def terminate(
    popens: Sequence[subprocess.Popen], grace_s: float, hurry: threading.Event | None = None
) -> None:
    """Stop started processes with their process groups and every descendant: SIGTERM, then
    SIGKILL for whatever still lives after ``grace_s`` (or once ``hurry`` is set)."""
    procs = [q for p in popens for q in _tree(p.pid)]
    _send(procs, popens, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while any(_alive(q) for q in procs) and time.monotonic() < deadline:
        if hurry is not None and hurry.is_set():
            break
        time.sleep(0.05)
    procs += [q for p in popens for q in _tree(p.pid) if q not in procs]  # started meanwhile
    _send([q for q in procs if _alive(q)], popens, signal.SIGKILL)


def _start(cmd: list[str], **kwargs) -> subprocess.Popen:
    """``cmd`` in a session of its own (its group: what stopping it stops), SIGTERMed should
    this process die."""
    return subprocess.Popen(
        cmd,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # only a prctl call between fork and exec
        **kwargs,
    )


class _NotStarted(Exception):
    """The pool was stopped before this job's process started."""


class LocalPool:
    """The processes of a local sweep's running jobs; :meth:`stop` ends every one (process
    groups and descendants included) and keeps the queued ones from starting."""

    active: ClassVar[set[LocalPool]] = set()  # pools running jobs now (see with_step_bar)

    def __init__(self) -> None:
        self.state: dict[str, str] = {}
        self.stopping = threading.Event()
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def start(self, name: str, cmd: list[str], **kwargs) -> subprocess.Popen:
        with self._lock:  # stop() sees every process started before it, none after
            if self.stopping.is_set():
                raise _NotStarted(name)
            self._procs[name] = proc = _start(cmd, **kwargs)
            return proc

    def finished(self, name: str) -> None:
        with self._lock:
            self._procs.pop(name, None)

    def stop(self) -> None:
        """Stop every running job (SIGTERM; SIGKILL after :data:`GRACE_S`, or at once on a
        second SIGINT/SIGTERM) and start no other."""
        self.stopping.set()
        with self._lock:
            popens = list(self._procs.values())
        hurry = threading.Event()
        with _handling([signal.SIGINT, signal.SIGTERM], lambda *_: hurry.set()):
            terminate(popens, GRACE_S, hurry)

    @classmethod
    def stop_all(cls) -> None:
        for pool in list(cls.active):
            pool.stop()


def run_job(job: Job, pool: LocalPool | None = None) -> str:
    """Train (or resume, or skip) one run; its output goes to ``job.log_file``. Returns the
    run's name; a failed run raises with its exit code and the log's last line (the callers
    name the run). ``pool``: the local sweep's, which can stop the process; interrupted here
    (a Slurm task's signal), the process and its children are stopped before this raises."""
    if run_status(job.run_dir) == "done":
        return job.name
    env = dict(os.environ)
    if job.threads:
        env["OMP_NUM_THREADS"] = str(job.threads)
    Path(job.log_file).parent.mkdir(parents=True, exist_ok=True)
    cmd = command(job)
    with open(job.log_file, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        kwargs = {"stdout": log, "stderr": subprocess.STDOUT, "env": env}
        proc = pool.start(job.name, cmd, **kwargs) if pool else _start(cmd, **kwargs)
        try:
            returncode = proc.wait()
        except BaseException:
            terminate([proc], GRACE_S)
            raise
        finally:
            if pool:
                pool.finished(job.name)
    if returncode:
        lines = Path(job.log_file).read_text(encoding="utf-8").strip().splitlines()
        raise RuntimeError(f"exit {returncode}: {lines[-1] if lines else ''}")
    return job.name


Progress = Callable[[dict[str, str]], None]  # job name -> waiting / running / done / failed


def run_local(
    jobs: Sequence[Job], workers: int, progress: Progress, pool: LocalPool | None = None
) -> dict[str, str]:
    """Every job in a pool of ``workers`` processes; returns each job's final state and
    the failures' messages (``state[name] = 'failed: ...'``). Once ``pool`` is stopped (an
    interrupted driver), the running jobs end as ``stopped`` and the queued ones stay
    ``waiting``, never started."""
    pool = pool if pool is not None else LocalPool()
    state = pool.state
    state.update({j.name: "done" if run_status(j.run_dir) == "done" else "waiting" for j in jobs})
    progress(state)

    def one(job: Job) -> None:
        if pool.stopping.is_set():
            return
        state[job.name] = "running"
        progress(state)
        try:
            run_job(job, pool)
            state[job.name] = "done"
        except _NotStarted:
            state[job.name] = "waiting"
        except Exception as e:  # noqa: BLE001 (a failed run is reported, the others go on)
            state[job.name] = "stopped" if pool.stopping.is_set() else f"failed: {e}"
        progress(state)

    LocalPool.active.add(pool)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as threads:
            futures = [threads.submit(one, j) for j in jobs if state[j.name] != "done"]
            try:
                wait(futures)
            except BaseException:  # interrupted, in the main thread
                pool.stop()
                raise
    finally:
        LocalPool.active.discard(pool)
    return state


def with_step_bar(
    jobs: Sequence[Job],
    launch: Callable[[], T],
    poll_s: float = 1.0,
    stop: Callable[[], None] | None = None,
) -> T:
    """``launch()`` (which runs ``jobs`` in processes of their own) under one progress bar
    over all their runs' updates, read from the logs they write (every ``poll_s``); returns
    what ``launch`` returns, or raises what it raised. Interrupted (SIGINT, or SIGTERM under
    :func:`sigterm_interrupts`), it calls ``stop`` (default: stop every running local pool),
    waits for ``launch`` to return, and raises the interruption."""
    from tqdm import tqdm

    def logged() -> int:
        return sum(steps_trained(j.run_dir) for j in jobs)

    with (
        ThreadPoolExecutor(1) as pool,
        tqdm(total=sum(j.steps for j in jobs), desc="train", unit="step") as bar,
    ):
        launched = pool.submit(launch)
        try:
            while not wait([launched], timeout=poll_s).done:
                bar.update(logged() - bar.n)
        except BaseException:
            (stop or LocalPool.stop_all)()
            raise
        bar.update(logged() - bar.n)
    return launched.result()


TEST_EXECUTORS = ("local", "debug")  # submitit's executors that run here, for the tests


def run_slurm(
    jobs: Sequence[Job],
    folder: Path,
    parameters: dict,
    progress: Progress,
    test_executor: str | None = None,
    poll_s: float = 5.0,
) -> dict[str, str]:
    """Every job as one task of a submitit array on Slurm, waited for. ``test_executor``
    (``local`` or ``debug``, for tests only) runs the same submission with submitit's
    executor of that name, on this machine. Interrupted, the jobs not finished are cancelled
    and :class:`Interrupted` is raised."""
    if test_executor is None:
        require_slurm()
    elif test_executor not in TEST_EXECUTORS:
        raise DataError(f"test executor must be one of {TEST_EXECUTORS}, not {test_executor!r}")
    import submitit

    todo = [j for j in jobs if run_status(j.run_dir) != "done"]
    state = {j.name: "done" if j not in todo else "waiting" for j in jobs}
    progress(state)
    if not todo:
        return state
    executor = submitit.AutoExecutor(folder=folder, cluster=test_executor or "slurm")
    executor.update_parameters(**parameters)
    submitted = executor.map_array(run_job, todo)
    pending = dict(zip([j.name for j in todo], submitted, strict=True))
    try:
        while pending:
            for name, job in list(pending.items()):
                if job.done():
                    try:
                        job.result()
                        state[name] = "done"
                    except Exception as e:  # noqa: BLE001
                        state[name] = f"failed: {' '.join(str(e).split())[-300:]}"
                    del pending[name]
                elif job.state in ("RUNNING", "COMPLETING"):
                    state[name] = "running"
            progress(state)
            if pending:
                time.sleep(poll_s)
    except (KeyboardInterrupt, Interrupted) as e:
        for name, job in pending.items():
            with contextlib.suppress(Exception):
                job.cancel(check=False)
            state[name] = "cancelled"
        raise Interrupted(signal_name(e), state, "slurm") from None
    return state


def slurm_parameters(slurm, name: str) -> dict:
    """submitit's parameters from the grid's ``slurm`` section."""
    params = {
        "name": name,
        "nodes": slurm.nodes,
        "tasks_per_node": 1,  # torchrun starts the processes inside the task
        "gpus_per_node": slurm.gpus_per_node,
        "cpus_per_task": slurm.cpus_per_task,
        "timeout_min": slurm.time_min,
    }
    if slurm.mem_gb:
        params["mem_gb"] = slurm.mem_gb
    if slurm.partition:
        params["slurm_partition"] = slurm.partition
    if slurm.account:
        params["slurm_account"] = slurm.account
    if slurm.qos:
        params["slurm_qos"] = slurm.qos
    if slurm.constraint:
        params["slurm_constraint"] = slurm.constraint
    return params
