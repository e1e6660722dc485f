"""``factdyn export``: the long parquet table holds exactly the scored (step, probe) pairs of a
run's log, checked row by row against the arrays the run directory was written from."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from factdyn.cli import app
from factdyn.rundir import STATS, init_logs

COLUMNS = ["step", "tokens", "item", "scenario", "depth", "probe", *STATS]
# logged steps as a sparse schedule leaves them; tokens exceed int32 from step 512 on
STEPS = np.array([0, 1, 2, 3, 5, 8, 13, 50, 1000, 1999, 2000])
TOKENS_PER_STEP = 2048 * 2048
DONE = 9  # a run killed after 9 logged steps: the last rows stay NaN
SCENARIOS = ["paraphrase", "once", "control"]
DEPTHS = ["memorization", "semantic", "composition"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory written by hand: 3 items (one a control) × 3 depths × 2 probes; items
    scored only at some steps, one probe with a statistic missing; the written log array."""
    root = tmp_path_factory.mktemp("run")
    rows = [
        (k, scenario, depth, j)
        for k, scenario in enumerate(SCENARIOS)
        for depth in DEPTHS
        for j in range(2)
    ]
    probes = pd.DataFrame(rows, columns=["item", "scenario", "depth", "probe"])
    probes.insert(0, "probe_id", np.arange(len(probes)))
    probes["input"], probes["target"] = "in", "out"
    probes.to_parquet(root / "probes.parquet", index=False)
    items = pd.DataFrame({"item": [0, 1, 2], "scenario": SCENARIOS, "n_injections": [3, 1, 0]})
    items.to_parquet(root / "items.parquet", index=False)
    injections = pd.DataFrame(
        [(0, 0, 0, "paraphrase", 0, 0, 5), (0, 1, 1, "once", 0, 0, 5)],
        columns=["step", "row", "item", "scenario", "variant", "token_start", "token_end"],
    )
    injections.to_parquet(root / "injections.parquet", index=False)
    meta = {"tokens_per_step": TOKENS_PER_STEP, "window": 5, "status": "running"}
    (root / "meta.json").write_text(json.dumps({**meta, "steps_done": int(STEPS[DONE - 1])}))
    (root / "config.yaml").write_text("train: {steps: 2000}\n")

    init_logs(root, STEPS, len(probes), int(STEPS[-1]))
    rng = np.random.default_rng(0)
    log = np.full((len(STEPS), len(probes), len(STATS)), np.nan, dtype=np.float32)
    scored_items = {0: [0, 1, 2], 1: [0, 2], 2: [2], 3: [1, 2]}  # others: items 0 and 2
    for r in range(DONE):
        for k in scored_items.get(r, [0, 2]):
            cols = probes.index[probes["item"] == k]
            log[r, cols] = rng.uniform(-9, -0.5, (len(cols), len(STATS)))
    log[4, 1, STATS.index("first")] = np.nan  # one statistic unavailable, the others scored
    logprobs = np.lib.format.open_memmap(root / "logprobs.npy", mode="r+")
    logprobs[...] = log
    logprobs.flush()
    del logprobs
    return root, probes, log


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    root, _, _ = run
    out = tmp_path_factory.mktemp("export") / "sub" / "log.parquet"
    result = CliRunner().invoke(app, ["export", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def _expected(probes: pd.DataFrame, log: np.ndarray) -> dict:
    """(step, item, depth, probe) -> (tokens, scenario, stats) for every scored pair."""
    want = {}
    for r, step in enumerate(STEPS):
        for p, row in probes.iterrows():
            if not np.isnan(log[r, p]).all():
                key = (int(step), row["item"], row["depth"], row["probe"])
                want[key] = (int(step) * TOKENS_PER_STEP, row["scenario"], log[r, p].tolist())
    return want


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_every_scored_pair_is_one_row_with_its_values(run, exported):
    _, probes, log = run
    out, output = exported
    want = _expected(probes, log)
    df = pd.read_parquet(out)
    assert list(df.columns) == COLUMNS
    assert f"{len(want):,} rows written to {out}" in output
    assert sorted(p.name for p in out.parent.iterdir()) == ["log.parquet"]  # no temp file left
    keys = list(zip(df["step"], df["item"], df["depth"], df["probe"], strict=True))
    assert len(keys) == len(set(keys)) == len(want)
    assert set(keys) == set(want)  # unscored (all-NaN) pairs and unfinished steps are absent
    for key, rec in zip(keys, df.itertuples(index=False), strict=True):
        tokens, scenario, stats = want[key]
        assert rec.tokens == tokens and rec.scenario == scenario
        got = [getattr(rec, s) for s in STATS]
        assert all(_same(float(np.float32(g)), s) for g, s in zip(got, stats, strict=True)), key
    assert df["tokens"].max() > 2**31  # no int32 overflow in step × tokens_per_step
    assert df["first"].isna().sum() == 1  # the one missing statistic stays in its row as NaN


def test_duckdb_reads_the_same_table(run, exported):
    duckdb = pytest.importorskip("duckdb")
    _, probes, log = run
    out, _ = exported
    rel = duckdb.sql(f"select * from '{out}'")
    assert rel.columns == COLUMNS
    assert dict(zip(rel.columns, rel.types, strict=True))["tokens"] == "BIGINT"
    want = _expected(probes, log)
    quoted = ", ".join(f'"{s}"' for s in STATS)  # "first" and "full" are SQL keywords
    rows = duckdb.sql(
        f"select step, item, depth, probe, tokens, scenario, {quoted} from '{out}'"
    ).fetchall()
    assert len(rows) == len(want)
    for step, item, depth, probe, tokens, scenario, *values in rows:
        w_tokens, w_scenario, w_stats = want[(step, item, depth, probe)]
        assert (tokens, scenario) == (w_tokens, w_scenario)
        assert all(_same(float(np.float32(g)), s) for g, s in zip(values, w_stats, strict=True))
    per_step = dict(duckdb.sql(f"select step, count(*) from '{out}' group by step").fetchall())
    assert per_step == {int(s): sum(1 for k in want if k[0] == s) for s in STEPS[:DONE]}
