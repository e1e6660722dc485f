"""One status vocabulary for runs and jobs: a run's meta.json read as written, and a sweep's
job states as the progress line, an interrupted driver and the failures report them."""

from __future__ import annotations

import json

from factdyn.rundir import Status, run_status
from factdyn.sweep.state import DONE, RUNNING, WAITING, JobState, failures
from factdyn.sweep.stopping import Interrupted
from factdyn.sweep.sweep import ProgressLine, interrupted_line


def test_a_runs_status_is_what_its_meta_json_says(tmp_path):
    assert run_status(tmp_path / "none") is Status.NEW
    for written, status in [
        ({"status": "running"}, Status.RUNNING),  # training now, or killed: a resume continues
        ({"status": "failed", "error": "x"}, Status.FAILED),
        ({"status": "done"}, Status.DONE),
        ({}, Status.RUNNING),
    ]:
        (tmp_path / "meta.json").write_text(json.dumps(written))
        assert run_status(tmp_path) is status
    assert json.dumps({"status": Status.DONE}) == '{"status": "done"}'  # as meta.json holds it


STATE = {"a": DONE, "b": RUNNING, "c": WAITING, "d": JobState(Status.FAILED, "exit 2: boom")}


def test_the_progress_line_counts_each_status_and_names_the_running_jobs():
    lines: list[str] = []
    show = ProgressLine(lines.append)
    show(STATE)
    show(dict(STATE))  # unchanged: no second line
    show({**STATE, "b": JobState(Status.STOPPED)})
    assert lines == [
        "runs: 1/4 done · 1 running (b) · 1 waiting · 1 failed",
        "runs: 1/4 done · 0 running · 1 waiting · 1 failed · 1 stopped",
    ]


def test_an_interrupted_driver_and_the_failures_are_reported_from_the_job_states():
    line = interrupted_line(Interrupted("SIGINT", STATE, "local"), "factdyn reproduce g")
    assert line == (
        "interrupted (SIGINT): stopped b (each resumes from its last checkpoint); 1 run not "
        "started; 1 failed; 1 of 4 done; resume with: factdyn reproduce g"
    )
    slurm = {**STATE, "b": JobState(Status.CANCELLED)}
    line = interrupted_line(Interrupted("SIGTERM", slurm, "slurm"), "cmd")
    assert line.startswith("interrupted (SIGTERM): cancelled the Slurm jobs of b ")
    assert failures(STATE) == ["d: exit 2: boom"]
