"""The main job end to end, in its --quick form, as a new user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from factdyn.demo import SEEDS


@pytest.mark.slow
def test_quick_demo_writes_report_and_summary(tmp_path):
    env = {**os.environ, "FACTDYN_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "factdyn", "demo", "--quick", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "report:" in r.stdout and "effectivity" in r.stdout
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
    for depth in ("memorization", "semantic", "composition"):
        assert (
            summary["duplicate"][depth]["n_probes"] == SEEDS * n_alone // 3
        )  # every seed's probes
    # a second call reuses the finished run and the cached world and base
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "pretrain" not in again.stderr and "train:" not in again.stderr
