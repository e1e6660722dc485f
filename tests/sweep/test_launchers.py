"""Launchers that do what they say: ``--launcher slurm`` needs Slurm (submitit's local
executor only when a test asks for it), an interrupted driver leaves nothing running,
``--set slurm.*`` reaches the grid's slurm section, the dry run prints the command that
launches it, and ``--help`` lists every shipped grid. No training: the slow jobs are
stand-ins, the Slurm submissions fakes."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from typer.testing import CliRunner

from factdyn.cli import app
from factdyn.errors import DataError
from factdyn.sweep.launch import Job
from factdyn.sweep.slurm import run_slurm, slurm_parameters
from factdyn.sweep.state import DONE
from factdyn.sweep.sweep import claim_output, dry_run, plan_sweep

GRIDS = Path(__file__).resolve().parents[2] / "src" / "factdyn" / "grids"


def _no_slurm_path(tmp_path: Path) -> str:
    """A PATH with python but neither sbatch nor srun."""
    bin_ = tmp_path / "bin"
    bin_.mkdir(exist_ok=True)
    (bin_ / "python").symlink_to(sys.executable)
    return str(bin_)


def _fake_slurm_path(tmp_path: Path) -> str:
    """A PATH on which sbatch and srun exist (they are never run: submitit is faked)."""
    bin_ = tmp_path / "slurm-bin"
    bin_.mkdir()
    for name in ("sbatch", "srun"):
        (bin_ / name).write_text("#!/bin/sh\nexit 1\n")
        (bin_ / name).chmod(0o755)
    return f"{bin_}{os.pathsep}{os.environ.get('PATH', '')}"


class _FakeExecutor:
    """submitit.AutoExecutor's surface, recording the cluster it was asked for."""

    clusters: list = []

    def __init__(self, folder, cluster=None):
        _FakeExecutor.clusters.append(cluster)

    def update_parameters(self, **kwargs):
        pass

    def map_array(self, fn, jobs):
        return [_FakeJob() for _ in jobs]


class _FakeJob:
    state = "COMPLETED"

    def done(self):
        return True

    def result(self):
        return None


@pytest.fixture
def fake_submitit(monkeypatch):
    import submitit

    _FakeExecutor.clusters = []
    monkeypatch.setattr(submitit, "AutoExecutor", _FakeExecutor)
    return _FakeExecutor


def _job(tmp_path: Path) -> Job:
    return Job("a", str(tmp_path / "runs" / "a"), "a.yaml", str(tmp_path / "a.log"))


# -- 1. --launcher slurm needs Slurm ------------------------------------------------------


def test_slurm_launcher_without_slurm_refuses_in_one_line(
    tmp_path, monkeypatch, exits_2, fake_submitit
):
    monkeypatch.setenv("PATH", _no_slurm_path(tmp_path))
    out = tmp_path / "grid"
    err = exits_2(["reproduce", "olmo", "--launcher", "slurm", "--out", out])
    assert "Slurm" in err and "sbatch" in err
    assert "login node" in err and "--launcher local" in err
    assert fake_submitit.clusters == []  # submitit never asked for an executor
    assert not out.exists()  # refused before anything is built or written


def test_the_slurm_path_asks_submitit_for_slurm_or_for_the_named_test_executor(
    tmp_path, monkeypatch, fake_submitit
):
    """submitit picks its local executor when asked for no cluster where there is no Slurm:
    the launcher always names one, and the local one only when a test asks for it."""
    job = _job(tmp_path)
    monkeypatch.setenv("PATH", _no_slurm_path(tmp_path))
    with pytest.raises(DataError, match="no Slurm"):
        run_slurm([job], tmp_path / "s", {}, lambda state: None)
    state = run_slurm([job], tmp_path / "s", {}, lambda state: None, test_executor="local")
    assert state == {"a": DONE}
    monkeypatch.setenv("PATH", _fake_slurm_path(tmp_path))
    run_slurm([job], tmp_path / "s", {}, lambda state: None)
    assert fake_submitit.clusters == ["local", "slurm"]
    with pytest.raises(DataError, match="test executor"):
        run_slurm([job], tmp_path / "s", {}, lambda state: None, test_executor="slurm")


# -- 2. an interrupted driver leaves nothing running ---------------------------------------

STAND_IN = """\
# A training job's stand-in: a process that starts a worker (as torchrun does) which
# ignores SIGTERM and SIGINT, records both pids, and sleeps.
import os, subprocess, sys, time
from pathlib import Path

record, name = Path(sys.argv[2]), Path(sys.argv[1]).name
worker = subprocess.Popen([sys.executable, "-c", "import signal, time; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "time.sleep(120)"])
(record / f"{name}.tmp").write_text(f"{os.getpid()} {worker.pid}")
(record / f"{name}.tmp").rename(record / f"{name}.pids")
time.sleep(120)
"""

DRIVER = """\
# factdyn reproduce, with each run's `factdyn train` replaced by STAND_IN
import sys
import factdyn.sweep.launch as launch
import factdyn.sweep.sweep as sweep

launch.GRACE_S = 1.0
launch.command = lambda job: [sys.executable, {stand_in!r}, job.run_dir, {record!r}]
sweep.check_run = lambda cfg, where: None
from factdyn.cli import main

sys.argv = ["factdyn", "reproduce", *sys.argv[1:]]
main()
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("how", ["SIGINT to the terminal's group", "SIGTERM to the driver"])
def test_an_interrupted_sweep_stops_its_jobs_and_their_children_and_starts_no_other(tmp_path, how):
    record = tmp_path / "started"
    record.mkdir()
    stand_in, driver = tmp_path / "stand_in.py", tmp_path / "driver.py"
    stand_in.write_text(STAND_IN)
    driver.write_text(DRIVER.format(stand_in=str(stand_in), record=str(record)))
    grid = tmp_path / "planted.yaml"  # three runs; --jobs 2 starts two, queues one
    grid.write_text(
        yaml.safe_dump(
            {
                "set": ["model.name=planted/model", f"data.path={tmp_path / 'nowhere'}"],
                "axes": {
                    "other": [
                        {"name": "b", "set": ["train.steps=251"]},
                        {"name": "c", "set": ["train.steps=252"]},
                    ]
                },
            }
        )
    )
    out = tmp_path / "sweep"
    args = [str(grid), "--out", str(out), "--jobs", "2"]
    proc = subprocess.Popen(
        [sys.executable, str(driver), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a terminal's foreground group of its own
        # as from a shell: SIGINT not ignored (a pytest-xdist worker ignores it, and Python
        # turns SIGINT into KeyboardInterrupt only where it was not ignored at start)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.time() + 120
        while len(list(record.glob("*.pids"))) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "the two first runs did not start"
            time.sleep(0.05)
        time.sleep(0.3)  # the workers set their signal handlers
        if how.startswith("SIGINT"):
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        else:
            proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    pids = [int(p) for f in record.glob("*.pids") for p in f.read_text().split()]
    deadline = time.time() + 5  # a SIGKILL takes effect at once, an orphan's reaping soon
    while any(not _gone(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if not _gone(p)] == []  # the jobs and their workers
    assert len(pids) == 4  # the queued run never started
    assert proc.returncode == (130 if how.startswith("SIGINT") else 143)
    last = stderr.strip().splitlines()[-1]
    name = "SIGINT" if how.startswith("SIGINT") else "SIGTERM"
    assert last.startswith(f"factdyn: interrupted ({name}): stopped "), stderr
    started = sorted(f.stem for f in record.glob("*.pids"))
    assert f"stopped {', '.join(started)} " in last
    assert "1 run not started" in last and "0 of 3 done" in last
    resume = last.split("resume with: ")[1]
    assert shlex.split(resume) == ["factdyn", "reproduce", *args]
    assert "Traceback" not in stderr


# -- 3. --set slurm.KEY=VALUE -----------------------------------------------------------


def test_set_slurm_fields_reach_the_grids_slurm_section_validated(tmp_path):
    sets = ["slurm.partition=gpu", "slurm.account=1234", "slurm.time_min=60", "slurm.qos=high"]
    sweep = plan_sweep("olmo", tmp_path / "o", overrides=[*sets, "data.files=/data/s.txt"])
    slurm = sweep.grid.slurm
    assert (slurm.partition, slurm.account, slurm.time_min, slurm.qos) == (
        "gpu",
        "1234",
        60,
        "high",
    )
    assert slurm.gpus_per_node == 8  # the grid's own, where not set
    assert {s.config.data.files for s in sweep.specs} == {"/data/s.txt"}  # runs: unchanged path
    params = slurm_parameters(slurm, "x")
    assert params["slurm_partition"] == "gpu" and params["timeout_min"] == 60
    assert params["slurm_qos"] == "high" and params["slurm_account"] == "1234"
    for bad, words in [
        ("slurm.partiton=gpu", ("unknown key 'slurm.partiton'", "did you mean 'slurm.partition'")),
        ("slurm.gpus_per_node=-1", ("slurm.gpus_per_node", "greater than or equal to 0")),
        ("slurm.time_min=soon", ("slurm.time_min",)),
        ("slurm.nodes=2", ("slurm.nodes", "one node")),  # a second node: the run trained twice
        ("slurm=gpu", ("slurm.KEY=VALUE",)),
    ]:
        with pytest.raises(DataError) as e:
            plan_sweep("olmo", tmp_path / "o", overrides=[bad])
        assert "\n" not in str(e.value) and bad in str(e.value)
        for w in words:
            assert w in str(e.value)


def test_cli_refuses_an_unknown_slurm_field_in_one_line(tmp_path, exits_2):
    err = exits_2(["reproduce", "olmo", "--dry-run", "--set", "slurm.acount=x"])
    assert "did you mean 'slurm.account'" in err


def test_a_sweep_resumes_with_other_slurm_settings(tmp_path):
    """Where runs run is no part of what they compute: another partition resumes the sweep;
    another run setting is another grid."""
    out = tmp_path / "o"
    claim_output(plan_sweep("olmo", out, overrides=["slurm.partition=a"]))
    claim_output(plan_sweep("olmo", out, overrides=["slurm.partition=b", "slurm.time_min=30"]))
    with pytest.raises(DataError, match="another grid"):
        claim_output(plan_sweep("olmo", out, overrides=["train.steps=10"]))


# -- 4. the dry run prints the command that launches its grid ------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["olmo", "--launcher", "slurm", "--set", "slurm.partition=gpu", "--set",
         "data.files=/data/shards list.txt"],
        ["tiny", "--quick", "--jobs", "2", "--set", "train.steps=40"],
    ],
)  # fmt: skip
def test_dry_run_prints_the_command_that_launches_the_grid_it_describes(
    tmp_path, monkeypatch, args
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "my grid"
    r = CliRunner().invoke(app, ["reproduce", *args, "--out", str(out), "--dry-run"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[-2] == "to launch this grid:"
    command = shlex.split(lines[-1])
    assert command[:2] == ["factdyn", "reproduce"]
    # the same grid, output, launcher and settings as the dry run
    again = CliRunner().invoke(app, [*command[1:], "--dry-run"])
    assert again.exit_code == 0, again.output
    assert again.output == r.output
    for a in args:
        assert a in command
    assert command[command.index("--out") + 1] == str(out)
    if "slurm" in args:
        assert "'slurm_partition': 'gpu'" in r.output
    assert not out.exists()


def test_dry_run_command_of_the_local_default_is_the_plain_command(tmp_path):
    sweep = plan_sweep("interval", tmp_path / "g")
    assert dry_run(sweep).splitlines()[-1] == f"  factdyn reproduce interval --out {tmp_path / 'g'}"


# -- 5. --help lists every shipped grid; an unknown one gets "did you mean" ---------------


def test_help_lists_every_shipped_grid():
    shipped = sorted(p.stem for p in GRIDS.glob("*.yaml"))
    assert len(shipped) >= 3
    r = CliRunner().invoke(app, ["reproduce", "--help"], terminal_width=200)
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    assert f"packaged grid by its bare name: {', '.join(shipped)}." in text


def test_an_unknown_grid_name_is_one_line_with_did_you_mean(exits_2):
    err = exits_2(["reproduce", "tiy", "--dry-run"])
    assert "tiy: no such grid file or packaged grid; did you mean 'tiny'?" in err
    assert "interval, olmo, tiny" in err


def test_the_recorded_sweep_keeps_the_slurm_settings_given(tmp_path):
    out = tmp_path / "o"
    claim_output(plan_sweep("olmo", out, overrides=["slurm.partition=gpu"]))
    record = json.loads((out / "sweep.json").read_text())
    assert record["spec"]["slurm"]["partition"] == "gpu"
    assert "slurm.partition=gpu" not in record["spec"]["set"]  # not a run setting
