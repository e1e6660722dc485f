"""The sweep end to end: a killed local sweep re-run gives the numbers of an uninterrupted
one on submitit's local executor (the Slurm path), and the tiny grid's --quick form decides
every finding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from factdyn.rundir import read_meta
from factdyn.train.base import stage_path

RUN = [
    "data.seq_len=128",
    "train.batch_size=4",
    "train.steps=30",
    "injection.interval=6",
    "injection.n_controls=3",
    "injection.cohorts=1",
    "injection.scenario_offset=0",
    "eval.window=4",
    "train.checkpoint_every=6",
]


def _toy_grid(tmp_path: Path, world: Path, base: Path) -> Path:
    """Two runs: the toy base and its half-way snapshot (a stage axis of one point)."""
    doc = {
        "set": [f"data.path={world}", f"model.name={base}", *RUN],
        "axes": {"stage": [{"name": "early", "set": [f"model.name={stage_path(base, 30)}"]}]},
        "slurm": {"gpus_per_node": 0, "cpus_per_task": 1, "time_min": 10},
    }
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _reproduce(grid: Path, out: Path, *extra: str, **popen):
    cmd = [sys.executable, "-m", "factdyn", "reproduce", str(grid), "--out", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return cmd, env


def _run(grid: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd, env = _reproduce(grid, out, *extra)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r


def _numbers(out: Path) -> tuple[list, pd.DataFrame]:
    """The report's findings and the comparison table (what a re-run must reproduce)."""
    findings = json.loads((out / "report" / "findings.json").read_text())
    table = out.with_name(out.name + "-table")
    subprocess.run(
        [sys.executable, "-m", "factdyn", "compare", str(out), "--out", str(table)],
        check=True,
        capture_output=True,
    )
    return findings, pd.read_csv(table / "compare.csv")


def test_a_killed_sweep_rerun_gives_the_numbers_of_an_uninterrupted_slurm_one(
    toy_world, toy_base, tmp_path
):
    """Both launchers and a kill in one test: each sweep of the toy grid costs half a minute
    of process start-ups. Every run has one torch thread (--jobs 2 on 2 cores, and the Slurm
    path under OMP_NUM_THREADS=1), so their logs can agree bit for bit."""
    grid = _toy_grid(tmp_path, toy_world, toy_base)
    whole = tmp_path / "slurm"
    _run(grid, whole, "--launcher", "slurm", "--test-executor", "local")
    for name in ("reference", "early"):
        assert read_meta(whole / "runs" / name)["status"] == "done"
    # one submitit job per run, with its own pickled submission and logs
    assert len(list((whole / "slurm").glob("*_submitted.pkl"))) == 2
    assert (whole / "report" / "report.html").is_file()
    assert read_meta(whole / "runs" / "early")["base_step"] == 30  # the snapshot's own step

    killed = tmp_path / "killed"
    cmd, env = _reproduce(grid, killed, "--jobs", "2")
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 300
    while time.time() < deadline:  # kill the sweep (and its training children) mid-run
        meta = killed / "runs" / "reference" / "meta.json"
        if meta.is_file() and json.loads(meta.read_text()).get("steps_done", 0) >= 6:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert read_meta(killed / "runs" / "reference")["status"] != "done"
    again = _run(grid, killed, "--jobs", "2")
    assert "resume" in (killed / "logs" / "reference.log").read_text()
    assert "runs: 2/2 done" in again.stdout
    assert "train: 100%" in again.stderr and "60/60" in again.stderr  # the steps' bar: 2 x 30
    skipped = _run(grid, killed)  # finished runs are skipped: nothing trains again
    assert "runs: 2/2 done · 0 running · 0 waiting" in skipped.stdout.splitlines()[0]

    (f1, t1), (f2, t2) = _numbers(whole), _numbers(killed)
    assert f1 == f2
    pd.testing.assert_frame_equal(t1, t2)
    for name in ("reference", "early"):
        np.testing.assert_array_equal(
            np.load(whole / "runs" / name / "logprobs.npy"),
            np.load(killed / "runs" / name / "logprobs.npy"),
        )
    assert {f["verdict"] for f in f1} <= {"reproduced", "contradicted", "inconclusive",
                                           "not testable"}  # fmt: skip
    stage = next(f for f in f1 if f["claim"].startswith("Effectivity does not improve"))
    assert stage["verdict"] != "not testable"  # the two stages of one lineage compared


def test_tiny_quick_grid_leaves_no_finding_not_testable(tmp_path):
    env = {**os.environ, "FACTDYN_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "grid"
    cmd = [sys.executable, "-m", "factdyn", "reproduce", "tiny", "--quick", "--out", str(out),
           "--jobs", "2"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    findings = json.loads((out / "report" / "findings.json").read_text())
    assert len(findings) == 16
    assert [f["claim"] for f in findings if f["verdict"] == "not testable"] == []
    html = (out / "report" / "report.html").read_text()
    for axis in ("stage", "lr_control", "size", "batch_size"):
        assert (out / "report" / "figures" / f"grid-{axis}.png").is_file()
    assert "0. The grid" in html


def test_interval_quick_grid_measures_and_predicts_the_threshold(tmp_path):
    env = {**os.environ, "FACTDYN_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "grid"
    cmd = [sys.executable, "-m", "factdyn", "reproduce", "interval", "--quick", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    html = (out / "report" / "report.html").read_text()
    assert "3b. The learnability threshold" in html
    assert (out / "report" / "figures" / "fig6-learnability.png").is_file()
    run = out / "runs" / "reference"
    a = subprocess.run([sys.executable, "-m", "factdyn", "analyze", str(run)], env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert a.returncode == 0, a.stderr[-2000:]
    table = pd.read_csv(run / "analysis" / "intervals.csv")
    assert set(table["interval"]) == {4, 16} and set(table["exposure"]) == {1, 2, 3}
    sim = subprocess.run(
        [
            sys.executable,
            "-m",
            "factdyn",
            "simulate",
            str(run / "analysis"),
            "--interval",
            "4",
            "--exposures",
            "3",
            "--scenario",
            "once",
        ],  # fmt: skip
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sim.returncode in (0, 2), sim.stderr  # 2: the tiny run left no usable fit
    assert sim.returncode == 0 or sim.stderr.startswith("factdyn: error: ")
