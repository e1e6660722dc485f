"""A sweep under a hostile user (issue 33): Ctrl-C however it arrives stops launching, one
sweep at a time per ``--out``, a grid's bad ``set`` blamed on the grid and its point, no
option the command does not have suggested, and a damaged ``sweep.json`` refused in one line.
No training: the jobs are the stand-ins of ``test_launchers.py``."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_launchers import DRIVER, STAND_IN, _gone


def _planted_grid(tmp_path: Path, points: int) -> Path:
    """A grid of the reference and ``points`` more runs that never train (the stand-ins)."""
    grid = tmp_path / "planted.yaml"
    others = [{"name": f"p{k}", "set": [f"train.steps={251 + k}"]} for k in range(points)]
    grid.write_text(
        yaml.safe_dump(
            {
                "set": ["model.name=planted/model", f"data.path={tmp_path / 'nowhere'}"],
                "axes": {"other": others},
            }
        )
    )
    return grid


def _start_driver(tmp_path: Path, args: list[str]) -> tuple[subprocess.Popen, Path]:
    """``factdyn reproduce ARGS`` with stand-in jobs, in a session of its own; and the folder
    where each started job records its pid and its worker's."""
    record = tmp_path / "started"
    record.mkdir()
    stand_in, driver = tmp_path / "stand_in.py", tmp_path / "driver.py"
    stand_in.write_text(STAND_IN)
    driver.write_text(DRIVER.format(stand_in=str(stand_in), record=str(record)))
    proc = subprocess.Popen(
        [sys.executable, str(driver), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a shell
    )
    return proc, record


def _wait_started(proc: subprocess.Popen, record: Path, n: int) -> list[Path]:
    deadline = time.time() + 120
    while len(list(record.glob("*.pids"))) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the first runs did not start"
        time.sleep(0.05)
    time.sleep(0.3)  # the workers set their signal handlers
    return sorted(record.glob("*.pids"))


# -- 1. Ctrl-C stops the sweep, however it arrives -------------------------------------------


@pytest.mark.parametrize("how", ["SIGINT to the driver alone", "SIGINT that kills the runs first"])
def test_ctrl_c_with_queued_runs_starts_none_of_them_and_says_how_to_resume(tmp_path, how):
    """--jobs 2 with two runs queued. The runs may die of the signal before the driver acts
    on its own (a signal to every process of a session, a service manager's stop): the pool
    used to take that for two failures and start the queued runs."""
    out = tmp_path / "sweep"
    args = [str(_planted_grid(tmp_path, 3)), "--out", str(out), "--jobs", "2"]
    proc, record = _start_driver(tmp_path, args)
    try:
        started = _wait_started(proc, record, 2)
        if how == "SIGINT to the driver alone":
            proc.send_signal(signal.SIGINT)
        else:  # the runs first; the driver gets no signal at all
            for f in started:
                os.kill(int(f.read_text().split()[0]), signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    pids = [int(p) for f in record.glob("*.pids") for p in f.read_text().split()]
    deadline = time.time() + 5
    while any(not _gone(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if not _gone(p)] == []  # the runs and their workers
    assert sorted(record.glob("*.pids")) == started  # no queued run started
    assert proc.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    names = ", ".join(f.stem for f in started)
    assert last.startswith(f"factdyn: interrupted (SIGINT): stopped {names} "), stderr
    assert "2 runs not started" in last and "0 of 4 done" in last and "failed" not in last
    assert shlex.split(last.split("resume with: ")[1]) == ["factdyn", "reproduce", *args]
    assert "Traceback" not in stderr
