"""Pooling seeds: the pooled numbers are those of all the runs' probes together, and the
bootstrap then resamples items, each with its copies in every seed."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from analyze_synth import planted_run, write_run_dir
from typer.testing import CliRunner

from factdyn.analyze.metrics import filtered_mean
from factdyn.analyze.pool import pool_runs
from factdyn.analyze.populations import analyze_run
from factdyn.cli import app
from factdyn.errors import DataError


def _seeded(seed: int):
    run = planted_run(n_controls=2, seed=seed, noise=0.2).run
    config = {**run.config, "data": {**run.config.get("data", {}), "seed": seed}}
    return dataclasses.replace(run, config=config)


@pytest.fixture(scope="module")
def runs():
    return [_seeded(0), _seeded(1)]


@pytest.fixture(scope="module")
def alone(runs):
    """Each run analysed on its own (analysed once: the tests below share them)."""
    return [analyze_run(r, resamples=300) for r in runs]


@pytest.fixture(scope="module")
def pooled(runs):
    return analyze_run(pool_runs(runs), resamples=300)


def test_pooled_effectivity_is_the_filtered_mean_over_both_runs_probes(pooled, alone):
    for p in pooled.populations:
        gains = [
            a.acquisition[(a.acquisition.scenario == p.scenario) & (a.acquisition.depth == p.depth)]
            for a in alone
        ]
        both = np.concatenate(
            [g.pivot(index="probe_id", columns="injection", values="gain") for g in gains]
        )
        want = filtered_mean(both.T, 1.5)[0]
        np.testing.assert_allclose(p.effectivity_per_injection, want, rtol=1e-12)
        assert p.n_probes == sum(a.get(p.scenario, p.depth).n_probes for a in alone)


def test_pooling_narrows_the_intervals(pooled, alone):
    single = alone[0]
    ratios = [
        (p.decay_constant_ci[1] - p.decay_constant_ci[0])
        / (
            single.get(p.scenario, p.depth).decay_constant_ci[1]
            - single.get(p.scenario, p.depth).decay_constant_ci[0]
        )
        for p in pooled.populations
    ]
    assert np.median(ratios) < 0.9  # twice the items: about 1/√2 as wide


def test_runs_that_differ_beyond_their_seeds_are_not_pooled(runs):
    other = dataclasses.replace(runs[1], config={**runs[1].config, "eval": {"window": 3}})
    with pytest.raises(DataError, match=r"configurations differ.*: .*eval\.window \S+ -> 3"):
        pool_runs([runs[0], other])
    # scored in other batches (the default changed): the same experiment, pooled
    rebatched = dataclasses.replace(
        runs[1],
        config={**runs[1].config, "eval": {**runs[1].config["eval"], "batch_tokens": 16384}},
    )
    assert len(pool_runs([runs[0], rebatched]).probes) == 2 * len(runs[0].probes)
    shorter = dataclasses.replace(runs[1], steps=runs[1].steps[:-1], logprobs=runs[1].logprobs[:-1])
    with pytest.raises(DataError, match="logged steps differ"):
        pool_runs([runs[0], shorter])


def test_analyze_pool_from_the_command_line(runs, tmp_path):
    dirs = [write_run_dir(r, tmp_path / f"seed{k}") for k, r in enumerate(runs)]
    out = tmp_path / "pooled"
    args = ["analyze", str(dirs[0]), "--pool", str(dirs[1]), "--resamples", "50"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert CliRunner().invoke(app, ["analyze", str(dirs[0]), "--resamples", "0"]).exit_code == 0
    alone = json.loads((dirs[0] / "analysis" / "summary.json").read_text())
    assert (
        summary["once"]["memorization"]["n_probes"] == 2 * alone["once"]["memorization"]["n_probes"]
    )
    assert summary["_settings"]["resamples"] == 50
    assert summary["_settings"]["source"] == f"{dirs[0]} + {dirs[1]} (pooled)"
    refused = CliRunner().invoke(app, args)  # no --out: a pool owns no run folder
    assert isinstance(refused.exception, DataError) and "--pool needs" in str(refused.exception)


def _with_data(run, meta: dict | None = None, **data):
    config = {**run.config, "data": {**run.config.get("data", {}), **data}}
    return dataclasses.replace(run, config=config, meta={**run.meta, **(meta or {})})


def test_a_run_pooled_with_its_copy_is_not_twice_the_evidence(runs, alone):
    # the same items twice: resampling items (with both copies) keeps the interval; a
    # bootstrap of (run, item) pairs would narrow it by about 1/√2 (the old behaviour). The
    # copy claims another seed and another training log, or pooling would refuse it as the
    # same data order, or as a copy.
    copy = _with_data(runs[0], seed=7)
    copy = dataclasses.replace(copy, train=copy.train.assign(loss=1.0))
    pooled = analyze_run(pool_runs([runs[0], copy]), resamples=300)
    single = alone[0]

    def width(p):
        return p.decay_constant_ci[1] - p.decay_constant_ci[0]

    ratios = [width(p) / width(single.get(p.scenario, p.depth)) for p in pooled.populations]
    assert 0.9 < np.median(ratios) < 1.1
    for p in pooled.populations:
        assert p.effectivity == pytest.approx(single.get(p.scenario, p.depth).effectivity)


def test_runs_reading_the_data_in_the_same_order_are_not_pooled(runs):
    again = runs[0].path.with_name("again")  # another run (its own training log): no copy
    same = dataclasses.replace(runs[0], path=again, train=runs[0].train.assign(loss=1.0))
    with pytest.raises(DataError) as e:
        pool_runs([runs[0], same])
    msg = str(e.value)
    assert str(runs[0].path) in msg and str(same.path) in msg
    assert "same order (data.seed 0, data.start 0)" in msg and "different data.seed" in msg
    # another data.start is another block of the stream: replicates
    later = _with_data(same, start=1000)
    assert len(pool_runs([runs[0], later]).probes) == 2 * len(runs[0].probes)
    # a null data.start is the base's recorded position: the same block as naming it
    base = {"base_state": {"data_position": 1000}}
    with pytest.raises(DataError, match=r"data\.seed 0, data\.start 1000"):
        pool_runs([_with_data(runs[0], base, start=None), later])


def test_hf_and_olmo_runs_from_before_their_seed_took_effect_are_not_pooled(runs):
    # trained when data.seed did not order these sources: both read the stream as it comes
    old = [_with_data(r, source="hf") for r in runs]
    with pytest.raises(
        DataError, match=r"data\.seed 1 and 0 were not applied to data\.source 'hf'"
    ):
        pool_runs(old)
    olmo = [_with_data(r, source="olmo") for r in runs]
    with pytest.raises(DataError, match="not independent replicates"):
        pool_runs(olmo)
    # a run that records the order it read (meta.json's data_order) pools by it
    new = [
        _with_data(r, {"data_order": {"seed": k, "start": 0}}, source="hf")
        for k, r in enumerate(runs)
    ]
    assert len(pool_runs(new).probes) == 2 * len(runs[0].probes)
