"""Running a sweep's jobs on this machine: a pool of processes (:class:`LocalPool`).

A job is one ``factdyn train`` command line: a new run, or ``--resume`` of one a crash or a
kill left behind; a finished run is skipped. The Slurm launcher (:mod:`.slurm`) runs the same
:func:`run_job` inside an array task, so the two paths are one. No scheduling of our own: the
local pool is :mod:`concurrent.futures`, Slurm is submitit. An interrupted driver stops its
local jobs, process trees and all, and starts none of the queued ones (:mod:`.stopping`); so
does a job that a SIGINT or SIGTERM ended before the driver acted on its own (the signal of a
whole process group or session), and the pool then raises :class:`~.stopping.Interrupted`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from factdyn.config import RunConfig, dump_config
from factdyn.errors import DataError
from factdyn.files import write_text_atomic
from factdyn.rundir import Status, run_status, steps_trained
from factdyn.sweep.state import DONE, RUNNING, WAITING, JobState, States
from factdyn.sweep.stopping import (
    Interrupted,
    handling,
    interrupted_by,
    start_session,
    terminate,
    wait_whole,
)

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
    with a training command, as :func:`run_job` begins it) is refused, not replaced or
    appended to."""
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
    if run_status(job.run_dir) == Status.NEW:
        args = ["train", job.config_file, "--out", job.run_dir]
    else:
        args = ["train", "--resume", job.run_dir]
    if job.processes > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={job.processes}", "-m", "factdyn", *args]  # fmt: skip
    return [sys.executable, "-m", "factdyn", *args]


GRACE_S = 10.0  # seconds a stopped job has between SIGTERM and SIGKILL


class _NotStarted(Exception):
    """The pool was stopped before this job's process started."""


class JobFailed(RuntimeError):
    """A job's process ended with ``returncode`` (not 0); the message: that code and its
    log's last line."""

    def __init__(self, returncode: int, last_line: str) -> None:
        super().__init__(f"exit {returncode}: {last_line}")
        self.returncode = returncode


class LocalPool:
    """The processes of a local sweep's running jobs; :meth:`stop` ends every one (process
    groups and descendants included) and keeps the queued ones from starting."""

    active: ClassVar[set[LocalPool]] = set()  # pools running jobs now (see with_step_bar)

    def __init__(self) -> None:
        self.state: States = {}
        self.stopping = threading.Event()
        self.interrupted: str | None = None  # the signal a job died of, which stopped the pool
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def start(self, name: str, cmd: list[str], **kwargs) -> subprocess.Popen:
        with self._lock:  # stop() sees every process started before it, none after
            if self.stopping.is_set():
                raise _NotStarted(name)
            self._procs[name] = proc = start_session(cmd, **kwargs)
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
        with handling([signal.SIGINT, signal.SIGTERM], lambda *_: hurry.set()):
            terminate(popens, GRACE_S, hurry)

    def interrupt(self, signal_name: str) -> None:
        """A job died of ``signal_name`` (SIGINT, SIGTERM): the sweep is being interrupted,
        so the pool stops as on the driver's own signal."""
        with self._lock:
            self.interrupted = self.interrupted or signal_name
        self.stop()

    @classmethod
    def stop_all(cls) -> None:
        for pool in list(cls.active):
            pool.stop()


def run_job(job: Job, pool: LocalPool | None = None) -> str:
    """Train (or resume, or skip) one run; its output goes to ``job.log_file``. Returns the
    run's name; a failed run raises with its exit code and the log's last line (the callers
    name the run). ``pool``: the local sweep's, which can stop the process; interrupted here
    (a Slurm task's signal), the process and its children are stopped before this raises."""
    if run_status(job.run_dir) == Status.DONE:
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
        proc = pool.start(job.name, cmd, **kwargs) if pool else start_session(cmd, **kwargs)
        try:
            returncode = wait_whole(proc, GRACE_S)
        except BaseException:
            terminate([proc], GRACE_S)
            raise
        finally:
            if pool:
                pool.finished(job.name)
    if returncode:
        lines = Path(job.log_file).read_text(encoding="utf-8").strip().splitlines()
        raise JobFailed(returncode, lines[-1] if lines else "")
    return job.name


Progress = Callable[[States], None]  # called with every job's state, at each change


def run_local(
    jobs: Sequence[Job], workers: int, progress: Progress, pool: LocalPool | None = None
) -> States:
    """Every job in a pool of ``workers`` processes; returns each job's final state (a
    failure's with its message). Once ``pool`` is stopped (an interrupted driver), the
    running jobs end STOPPED and the queued ones stay WAITING, never started; a job that
    died of SIGINT or SIGTERM stops it so, and :class:`Interrupted` is raised with the
    states once every job has ended."""
    pool = pool if pool is not None else LocalPool()
    state = pool.state
    state.update({j.name: DONE if run_status(j.run_dir) == Status.DONE else WAITING for j in jobs})
    progress(state)

    def one(job: Job) -> None:
        if pool.stopping.is_set():
            return
        state[job.name] = RUNNING
        progress(state)
        try:
            run_job(job, pool)
            state[job.name] = DONE
        except _NotStarted:
            state[job.name] = WAITING
        except Exception as e:  # noqa: BLE001 (a failed run is reported, the others go on)
            signal_name = interrupted_by(getattr(e, "returncode", None))
            if signal_name is not None and not pool.stopping.is_set():
                pool.interrupt(signal_name)
            failed = JobState(Status.FAILED, str(e))
            state[job.name] = JobState(Status.STOPPED) if pool.stopping.is_set() else failed
        progress(state)

    LocalPool.active.add(pool)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as threads:
            futures = [threads.submit(one, j) for j in jobs if state[j.name] != DONE]
            try:
                wait(futures)
            except BaseException:  # interrupted, in the main thread
                pool.stop()
                raise
    finally:
        LocalPool.active.discard(pool)
    if pool.interrupted is not None:
        raise Interrupted(pool.interrupted, state)
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
    :func:`~factdyn.sweep.stopping.sigterm_interrupts`), it calls ``stop`` (default: stop
    every running local pool), waits for ``launch`` to return, and raises the interruption."""
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
