"""The greedy statistic in analysis: the ``greedy`` table against a per-probe count done
independently (pandas over the long log), and runs logged before greedy existed (4
statistics) still load, export and analyse."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from analyze_synth import planted_run, with_greedy, write_run_dir

from factdyn.analyze.pool import pool_runs
from factdyn.analyze.populations import analyze_run
from factdyn.analyze.write import write_analysis
from factdyn.errors import DataError
from factdyn.rundir import STATS, export_long, load_run


def _with_greedy(seed: int = 0):
    return with_greedy(planted_run(n_controls=2, seed=seed).run, seed)


def _expected_share(run) -> pd.DataFrame:
    long = export_long(run).dropna(subset=["greedy"])
    return (
        long.groupby(["step", "scenario", "depth"], sort=False)["greedy"]
        .agg(share="mean", n="count")
        .reset_index()
    )


def test_greedy_table_is_the_share_of_scored_probes():
    run = _with_greedy()
    got = analyze_run(run, resamples=0).greedy
    assert list(got.columns) == ["step", "tokens", "scenario", "depth", "share", "n"]
    want = _expected_share(run)
    key = ["step", "scenario", "depth"]
    merged = got.astype({"scenario": str, "depth": str}).merge(want, on=key, how="outer")
    assert len(merged) == len(got) == len(want)
    np.testing.assert_allclose(merged["share_x"], merged["share_y"], atol=1e-12)
    assert (merged["n_x"] == merged["n_y"]).all()
    assert (got["tokens"] == got["step"] * run.tokens_per_step).all()
    assert 0 < got["share"].mean() < 1 and got["share"].nunique() > 5  # not degenerate


def test_greedy_csv_written(tmp_path):
    analysis = analyze_run(_with_greedy(), resamples=0)
    write_analysis(analysis, tmp_path / "a")
    back = pd.read_csv(tmp_path / "a" / "greedy.csv")
    assert len(back) == len(analysis.greedy) > 0
    np.testing.assert_allclose(back["share"], analysis.greedy["share"])


@pytest.fixture()
def old_run_dir(tmp_path):
    """A run directory whose probe log holds the four statistics older runs logged."""
    run = planted_run(n_controls=2).run
    run.logprobs = np.ascontiguousarray(run.logprobs[:, :, :4])
    return write_run_dir(run, tmp_path / "old")


def test_run_with_four_statistics_loads_exports_and_analyses(old_run_dir, tmp_path):
    run = load_run(old_run_dir)
    assert run.logprobs.shape[2] == 4 and not run.has_stat("greedy")
    with pytest.raises(DataError, match=f"{old_run_dir}: statistic 'greedy' was not logged"):
        run.stat("greedy")
    long = export_long(run)
    assert list(long.columns[-len(STATS) :]) == list(STATS)
    assert long["greedy"].isna().all() and long["target_mean"].notna().all()
    analysis = analyze_run(old_run_dir, resamples=0)
    assert analysis.populations
    assert analysis.greedy.empty
    assert list(analysis.greedy.columns) == ["step", "tokens", "scenario", "depth", "share", "n"]
    write_analysis(analysis, tmp_path / "a")
    assert pd.read_csv(tmp_path / "a" / "greedy.csv").empty


def test_old_and_new_runs_pool_without_greedy(old_run_dir, tmp_path):
    run = _with_greedy()
    run = replace(run, meta={**run.meta, "data_order": {"seed": 1, "start": 0}})  # another seed
    new = write_run_dir(run, tmp_path / "new")
    pooled = pool_runs([old_run_dir, new])
    assert not pooled.has_stat("greedy")
    assert analyze_run(pooled, resamples=0).greedy.empty
