"""Running a sweep's jobs on Slurm: one task of a submitit array per job, each running the
local path's :func:`~factdyn.sweep.launch.run_job` (with ``torchrun`` for several GPUs).

``--launcher slurm`` needs Slurm (:func:`require_slurm`): submitit's own fallback to a local
executor is reached only by asking for it (``test_executor``: the tests).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from factdyn.errors import DataError
from factdyn.rundir import Status, run_status
from factdyn.sweep.launch import Job, Progress, run_job
from factdyn.sweep.state import DONE, RUNNING, WAITING, JobState, States
from factdyn.sweep.stopping import Interrupted, signal_name


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


TEST_EXECUTORS = ("local", "debug")  # submitit's executors that run here, for the tests


def run_slurm(
    jobs: Sequence[Job],
    folder: Path,
    parameters: dict,
    progress: Progress,
    test_executor: str | None = None,
    poll_s: float = 5.0,
) -> States:
    """Every job as one task of a submitit array on Slurm, waited for. ``test_executor``
    (``local`` or ``debug``, for tests only) runs the same submission with submitit's
    executor of that name, on this machine. Interrupted, the jobs not finished are cancelled
    and :class:`Interrupted` is raised."""
    if test_executor is None:
        require_slurm()
    elif test_executor not in TEST_EXECUTORS:
        raise DataError(f"test executor must be one of {TEST_EXECUTORS}, not {test_executor!r}")
    import submitit

    todo = [j for j in jobs if run_status(j.run_dir) != Status.DONE]
    state = {j.name: DONE if j not in todo else WAITING for j in jobs}
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
                        state[name] = DONE
                    except Exception as e:  # noqa: BLE001
                        why = " ".join(str(e).split())[-300:]
                        state[name] = JobState(Status.FAILED, why)
                    del pending[name]
                elif job.state in ("RUNNING", "COMPLETING"):
                    state[name] = RUNNING
            progress(state)
            if pending:
                time.sleep(poll_s)
    except (KeyboardInterrupt, Interrupted) as e:
        for name, job in pending.items():
            with contextlib.suppress(Exception):
                job.cancel(check=False)
            state[name] = JobState(Status.CANCELLED)
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
