"""Running a sweep's jobs: on this machine (a pool of processes) or on Slurm (submitit).

A job is one ``factdyn train`` command line: a new run, or ``--resume`` of one a crash or a
kill left behind; a finished run is skipped. Both launchers run the same :func:`run_job`, so
the Slurm path is the local one inside an array task (with ``torchrun`` for several GPUs).
No scheduling of our own: the local pool is :mod:`concurrent.futures`, Slurm is submitit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

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
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_job(job: Job) -> str:
    """Train (or resume, or skip) one run; its output goes to ``job.log_file``. Returns the
    run's name; a failed run raises with its exit code and the log's last line (the callers
    name the run)."""
    if run_status(job.run_dir) == "done":
        return job.name
    env = dict(os.environ)
    if job.threads:
        env["OMP_NUM_THREADS"] = str(job.threads)
    Path(job.log_file).parent.mkdir(parents=True, exist_ok=True)
    with open(job.log_file, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(command(job))}\n")
        log.flush()
        done = subprocess.run(
            command(job),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,  # only a prctl call between fork and exec
        )
    if done.returncode:
        lines = Path(job.log_file).read_text(encoding="utf-8").strip().splitlines()
        raise RuntimeError(f"exit {done.returncode}: {lines[-1] if lines else ''}")
    return job.name


Progress = Callable[[dict[str, str]], None]  # job name -> waiting / running / done / failed


def run_local(jobs: Sequence[Job], workers: int, progress: Progress) -> dict[str, str]:
    """Every job in a pool of ``workers`` processes; returns each job's final state and
    the failures' messages (``state[name] = 'failed: ...'``)."""
    state = {j.name: "done" if run_status(j.run_dir) == "done" else "waiting" for j in jobs}
    progress(state)

    def one(job: Job) -> None:
        state[job.name] = "running"
        progress(state)
        try:
            run_job(job)
            state[job.name] = "done"
        except Exception as e:  # noqa: BLE001 (a failed run is reported, the others go on)
            state[job.name] = f"failed: {e}"
        progress(state)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, [j for j in jobs if state[j.name] != "done"]))
    return state


def with_step_bar(jobs: Sequence[Job], launch: Callable[[], T], poll_s: float = 1.0) -> T:
    """``launch()`` (which runs ``jobs`` in processes of their own) under one progress bar
    over all their runs' updates, read from the logs they write (every ``poll_s``); returns
    what ``launch`` returns, or raises what it raised."""
    from tqdm import tqdm

    def logged() -> int:
        return sum(steps_trained(j.run_dir) for j in jobs)

    with (
        ThreadPoolExecutor(1) as pool,
        tqdm(total=sum(j.steps for j in jobs), desc="train", unit="step") as bar,
    ):
        launched = pool.submit(launch)
        while not wait([launched], timeout=poll_s).done:
            bar.update(logged() - bar.n)
        bar.update(logged() - bar.n)
    return launched.result()


def run_slurm(
    jobs: Sequence[Job],
    folder: Path,
    parameters: dict,
    progress: Progress,
    cluster: str | None = None,
    poll_s: float = 5.0,
) -> dict[str, str]:
    """Every job as one task of a submitit array (``cluster='local'``: submitit's local
    executor, which runs the same submission as subprocesses), waited for."""
    try:
        import submitit
    except ImportError:
        raise DataError("--launcher slurm needs submitit: pip install submitit") from None
    todo = [j for j in jobs if run_status(j.run_dir) != "done"]
    state = {j.name: "done" if j not in todo else "waiting" for j in jobs}
    progress(state)
    if not todo:
        return state
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(**parameters)
    submitted = executor.map_array(run_job, todo)
    pending = dict(zip([j.name for j in todo], submitted, strict=True))
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
    return params
