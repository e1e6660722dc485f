"""A sweep's jobs as they stand: each job's :class:`JobState` (a
:class:`~factdyn.rundir.Status` and, for a failed job, why), what the launchers return, the
progress line shows and an interrupted driver reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from factdyn.rundir import Status


@dataclass(frozen=True)
class JobState:
    status: Status
    message: str = ""  # a failed job's: its exit code and its log's last line


WAITING, RUNNING, DONE = JobState(Status.WAITING), JobState(Status.RUNNING), JobState(Status.DONE)
States = dict[str, JobState]  # job name -> its state


def counts(state: States) -> Counter[Status]:
    """How many jobs stand at each status."""
    return Counter(s.status for s in state.values())


def named(state: States, *statuses: Status) -> list[str]:
    """The names of the jobs at any of ``statuses``, sorted."""
    return sorted(k for k, s in state.items() if s.status in statuses)


def failures(state: States) -> list[str]:
    """One line per failed job: its name and why."""
    return [f"{k}: {s.message}" for k, s in state.items() if s.status is Status.FAILED]
