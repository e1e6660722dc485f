"""The main job end to end, in its --quick form, as a new user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from factdyn.demo import QUICK_RUN, SEEDS
from factdyn.errors import DataError


def test_quick_demo_writes_report_and_summary(tmp_path):
    env = {**os.environ, "FACTDYN_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "factdyn", "demo", "--quick", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "report:" in r.stdout and "effectivity" in r.stdout
    # the runs train side by side, in processes of their own, under one bar over their steps
    steps = SEEDS * QUICK_RUN["train"]["steps"]
    assert f"{steps}/{steps}" in r.stderr
    html = (out / "report" / "report.html").read_text()
    assert "data:image/png;base64," in html
    # SEEDS seeds of one run (another order of the background text), analysed pooled
    dirs = ["run"] + [f"run-seed{k}" for k in range(1, SEEDS)]
    metas = [json.loads((out / d / "meta.json").read_text()) for d in dirs]
    assert [m["config"]["data"]["seed"] for m in metas] == list(range(SEEDS))
    alone = [np.load(out / d / "logprobs.npy") for d in dirs]
    assert all(a.shape == alone[0].shape and not np.array_equal(a, alone[0]) for a in alone[1:])
    summary = json.loads((out / "analysis" / "summary.json").read_text())
    assert {"paraphrase", "duplicate", "once"} <= set(summary)
    n_alone = len(pd.read_parquet(out / "run" / "probes.parquet").query("scenario == 'duplicate'"))
    for depth in ("memorization", "semantic", "composition"):  # every seed's probes
        assert summary["duplicate"][depth]["n_probes"] == SEEDS * n_alone // 3
    # `factdyn report` of the demo folder shows the demo's pooled analysis: the same verdicts
    mine = tmp_path / "mine"
    reported = subprocess.run(
        [sys.executable, "-m", "factdyn", "report", str(out), "--out", str(mine)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert reported.returncode == 0, reported.stderr[-3000:]
    assert f"the analysis saved in {out / 'analysis'}" in reported.stdout

    def verdicts(folder):
        doc = json.loads((folder / "findings.json").read_text())
        return [(f["ref"], f["verdict"], f["interval"]) for f in doc]

    assert verdicts(mine) == verdicts(out / "report")
    # a second call reuses the finished run and the cached world and base
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "pretrain" not in again.stderr and "train:" not in again.stderr

    # a finished run of another configuration (an older version's demo) is refused, not reused
    # or retrained, before anything is written
    old = out / "run-seed1"
    meta = json.loads((old / "meta.json").read_text())
    meta["config"]["injection"]["interval"] += 1
    (old / "meta.json").write_text(json.dumps(meta))
    config = yaml.safe_load((old / "config.yaml").read_text())
    config["injection"]["interval"] += 1
    (old / "config.yaml").write_text(yaml.safe_dump(config))
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    refused = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 2, refused.stderr[-3000:]
    line = refused.stderr.strip().splitlines()[-1]
    want = meta["config"]["injection"]["interval"]
    assert str(old) in line and f"injection.interval {want} -> {want - 1}" in line
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_a_failed_run_names_itself_and_its_log(tmp_path):
    """The runs train in processes of their own; one that fails is reported with its log's
    last line, not lost in a traceback."""
    from factdyn.config import load_config
    from factdyn.demo import train_side_by_side
    from factdyn.errors import TrainingError

    cfg = load_config(None, [f"data.path={tmp_path}", "model.name=/no/such/base"])
    with pytest.raises(TrainingError) as e:
        train_side_by_side([(cfg, tmp_path / "run-seed1")], tmp_path, threads=1)
    message = str(e.value)
    assert message.startswith("run-seed1: exit 2: ") and "model.name" in message
    assert f"logs in {tmp_path / 'logs'}" in message
    assert "model.name" in (tmp_path / "logs" / "run-seed1.log").read_text()


def test_files_of_the_same_names_that_are_not_the_runs_are_kept(tmp_path):
    """The demo writes each run's configuration and log beside the runs; a user's file of
    that name is refused before anything trains, and left as it was."""
    from factdyn.config import load_config
    from factdyn.demo import train_side_by_side

    out = tmp_path / "out"
    cfg = load_config(None, [f"data.path={tmp_path}", "model.name=/no/such/base"])
    for mine in ("configs/run-seed1.yaml", "logs/run-seed1.log"):
        path = out / mine
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("$ a user's own notes\n")
        with pytest.raises(DataError, match=str(path)):
            train_side_by_side([(cfg, out / "run-seed1")], out, threads=1)
        assert path.read_text() == "$ a user's own notes\n"
        path.unlink()
    assert not (out / "run-seed1").exists()


def test_the_help_states_the_demos_own_seed_count():
    """The CLI does not import factdyn.demo at start-up, so its help repeats SEEDS: a change
    of the default must change both."""
    from typer.testing import CliRunner

    from factdyn.cli import app

    result = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 0 and f"analysed pooled (default {SEEDS}:" in text
