"""A sweep under a hostile user (issue 33): Ctrl-C however it arrives stops launching, one
sweep at a time per ``--out``, a grid's bad ``set`` blamed on the grid and its point, no
option the command does not have suggested, and a damaged ``sweep.json`` refused in one line.
No training: the jobs are the stand-ins of ``test_launchers.py``."""

from __future__ import annotations

import fcntl
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

import factdyn.sweep.sweep as sweep_module
from factdyn.errors import DataError
from factdyn.sweep.sweep import SWEEP, claim_output, plan_sweep, sweep_lock

sys.path.insert(0, str(Path(__file__).parents[1] / "faults"))
from harness import assert_refused, run_cli, snapshot  # noqa: E402


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


# -- 2. one sweep per --out -----------------------------------------------------------------


@pytest.fixture
def unchecked(monkeypatch):
    """Runs not checked against their inputs (the planted grid's exist nowhere), so that a
    command reaches the sweep directory without building or reading anything."""
    monkeypatch.setattr(sweep_module, "check_run", lambda cfg, where: None)


def _hold(lock: Path, record: str = "424242 otherhost 2026-01-01T00:00:00Z\n"):
    """``lock`` held as another process would hold it, its record naming that process."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    f = lock.open("a+")
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    f.truncate(0)
    f.write(record)
    f.flush()
    return f


@pytest.mark.parametrize("state", ["a new --out", "a started sweep"])
def test_a_second_sweep_into_one_out_is_refused_naming_the_first(tmp_path, unchecked, state):
    grid, out = _planted_grid(tmp_path, 1), tmp_path / "sweep"
    if state == "a started sweep":
        claim_output(plan_sweep(grid, out))
    with _hold(out / ".lock"):
        before = snapshot(tmp_path)
        outcome = run_cli("reproduce", grid, "--out", out)
        assert_refused(outcome, mentions="another sweep is running into this folder")
        assert "process 424242 on otherhost since 2026-01-01T00:00:00Z" in outcome.stderr
        assert snapshot(tmp_path) == before


def test_a_stale_sweep_lock_does_not_block(tmp_path):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / ".lock").write_text("424242 otherhost 2026-01-01T00:00:00Z\n")  # its holder died
    lock = sweep_lock(out)
    try:
        assert (out / ".lock").read_text().split()[0] == str(os.getpid())
        with pytest.raises(DataError, match=f"process {os.getpid()} on "):
            sweep_lock(out)
    finally:
        lock.release()


def test_a_refused_sweep_leaves_no_folder_or_lock_behind(tmp_path):
    out = tmp_path / "new" / "sweep"
    outcome = run_cli("reproduce", _planted_grid(tmp_path, 1), "--out", out)
    assert_refused(outcome, mentions="nowhere")  # the runs' data, checked before any run
    assert not (tmp_path / "new").exists()


# -- 5. no option the command does not have ------------------------------------------------


def test_a_foreign_out_is_refused_without_suggesting_an_overwrite_option(tmp_path, unchecked):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    grid = _planted_grid(tmp_path, 1)
    before = snapshot(tmp_path)
    outcome = run_cli("reproduce", grid, "--out", out)
    assert_refused(outcome, mentions="holds no sweep")
    assert "--overwrite" not in outcome.stderr
    assert snapshot(tmp_path) == before


# -- 6. a damaged sweep record ----------------------------------------------------------------

DAMAGE = {
    "truncated": b'{"grid": "planted.yaml", "qu',
    "not UTF-8": b'{"grid": "\xff\xfe"}',
    "a list": b"[]",
    "wrong types": b'{"grid": 1, "quick": "no", "spec": [], "runs": {}}',
    "a run named out of the folder": (
        b'{"grid": "g", "quick": false, "spec": {}, '
        b'"runs": [{"name": "../../etc", "point": "p", "axis": "other", "replicate": 0}]}'
    ),
}


@pytest.mark.parametrize("command", ["reproduce", "report", "compare"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_sweep_record_is_one_line(tmp_path, unchecked, command, damage):
    grid, out = _planted_grid(tmp_path, 1), tmp_path / "sweep"
    claim_output(plan_sweep(grid, out))
    (out / SWEEP).write_bytes(DAMAGE[damage])
    before = snapshot(tmp_path)
    args = {
        "reproduce": ["reproduce", grid, "--out", out],
        "report": ["report", out],
        "compare": ["compare", out, "--out", tmp_path / "cmp"],
    }[command]
    assert_refused(run_cli(*args), mentions=str(out / SWEEP))
    assert snapshot(tmp_path) == before
