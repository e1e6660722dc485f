"""Planted dynamics (known gains, a known power law, outliers, drift) are recovered.

Tolerances: effectivity is deterministic up to float32 storage (1e-3 nat); the decay fit
averages 40 probes with ±0.03 uniform noise per step (a, b within 0.01, R² > 0.98); the
x-intercept follows from a and b (within 10 %).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from analyze_synth import DEPTHS, planted_run

from factdyn.analyze.populations import analyze_run
from factdyn.errors import DataError
from factdyn.report.text import format_summary
from factdyn.train.evaluation import eval_schedule


@pytest.fixture(scope="module")
def planted():
    return planted_run(n_controls=4, drift=0.002, effect_outliers=1, retention_outliers=1)


@pytest.fixture(scope="module")
def analysis(planted):
    return analyze_run(planted.run)


def test_summary_has_the_issue_shape(analysis):
    assert analysis.scenarios() == ["duplicate", "once"]  # controls are not a scenario
    assert [(p.scenario, p.depth) for p in analysis.populations] == [
        (s, d) for s in ("duplicate", "once") for d in DEPTHS
    ]
    keys = {
        *("effectivity", "effectivity_per_injection", "retainability", "retainability_steps"),
        *("decay_constant", "intercept", "r2", "decay_constant_se", "x_intercept_steps"),
        *("x_intercept_tokens", "n_probes", "n_excluded", "n_outliers"),
        *("effectivity_ci", "effectivity_per_injection_ci", "retainability_ci", "snr"),
        *("snr_ci", "r2_ci", "alternatives"),
        *("decay_constant_ci", "intercept_ci", "x_intercept_steps_ci", "x_intercept_tokens_ci"),
    }
    for s, by_depth in analysis.summary.items():
        assert list(by_depth) == list(DEPTHS) == analysis.depths(s)
        for d, entry in by_depth.items():
            assert set(entry) == keys
            p = analysis.get(s, d)
            assert entry == p.as_dict() and (p.scenario, p.depth) == (s, d)
            assert p.retainability_steps[0] == 0 and p.retainability[0] == 1.0
            assert len(p.retainability) == len(p.retainability_steps) == len(p.retainability_ci)
            assert len(p.effectivity_per_injection_ci) == len(p.effectivity_per_injection)
    assert analysis.get("control", "semantic") is None


def test_planted_gains_are_recovered_per_injection_despite_outliers(planted, analysis):
    for (scenario, depth), gains in planted.gains.items():
        entry = analysis.get(scenario, depth)
        np.testing.assert_allclose(entry.effectivity_per_injection, gains, atol=1e-3)
        assert entry.effectivity == pytest.approx(np.mean(gains), abs=1e-3)
    eff = analysis.effectivity
    first = eff[eff.injection == 1]
    assert (first.n_outliers >= 8).all()  # the 8 planted 30× gains (one per item) are removed
    assert (eff[eff.injection > 1].n_outliers == 0).all()


def test_planted_power_law_is_recovered(planted, analysis):
    for scenario, (a, b) in planted.decay.items():
        for depth in DEPTHS:
            e = analysis.get(scenario, depth)
            assert e.decay_constant == pytest.approx(a, abs=0.01)
            assert e.intercept == pytest.approx(b, abs=0.01)
            assert e.r2 > 0.98
            assert e.decay_constant_se < 0.005
            lo, hi = e.decay_constant_ci  # the item bootstrap's interval holds the plant
            assert lo <= a <= hi and hi - lo < 0.02, (scenario, depth, lo, hi)
            assert e.effectivity_ci[0] <= e.effectivity <= e.effectivity_ci[1]
            assert e.x_intercept_steps == pytest.approx(10 ** (b / a), rel=0.1)
            assert e.x_intercept_tokens == pytest.approx(e.x_intercept_steps * 1000)
            assert e.n_probes == 40 and e.n_excluded == 0
            # 8 retention outliers per t ≥ 1 are removed at every interval
            assert e.n_outliers >= 8 * (len(e.retainability_steps) - 1)


def test_drift_correction_removes_planted_drift(planted, analysis):
    clean = analyze_run(planted_run(effect_outliers=1, retention_outliers=1).run)
    raw = analyze_run(planted.run, drift_correct=False)
    assert analysis.settings.drift_corrected and not raw.settings.drift_corrected
    for s in clean.scenarios():
        for d in DEPTHS:
            want = clean.get(s, d)
            got = analysis.get(s, d)
            assert got.decay_constant == pytest.approx(want.decay_constant, abs=1e-3)
            assert got.effectivity == pytest.approx(want.effectivity, abs=1e-3)
            assert abs(raw.get(s, d).decay_constant - want.decay_constant) > 0.05
    drift = analysis.control_drift
    last = drift[drift.step == drift.step.max()]
    np.testing.assert_allclose(last.delta, -0.002 * 600, atol=1e-4)
    assert sorted(last.depth) == sorted(DEPTHS)
    assert "control drift" in format_summary(analysis)


def test_reference_mode_turns_drift_off_and_keeps_percent(planted):
    ref = analyze_run(planted.run, reference=True)
    assert not ref.settings.drift_corrected
    assert ref.settings.iqr_factor == 2.0 and ref.settings.retainability_unit == "percent"
    clean = analyze_run(planted_run().run, reference=True)
    e = clean.get("once", "memorization")
    assert e.retainability[0] == 100.0
    assert e.decay_constant == pytest.approx(15.0, abs=1.0)
    assert e.x_intercept_steps == pytest.approx(10 ** (0.8 / 0.15), rel=0.1)
    with pytest.raises(DataError, match="control probes"):
        analyze_run(planted_run().run, drift_correct=True)


def test_sparse_log_is_fitted_on_the_logged_intervals_only():
    total, window = 600, 10
    sched = [0, 40, 80, 120, 160]
    keep = {0, total}
    for t in sched:
        keep.update(range(t, t + window + 1))
    keep.update(np.unique(np.geomspace(1, total - 170, 25).round().astype(int) + 170).tolist())
    keep = np.array(sorted(keep))
    planted = planted_run(keep_steps=keep, total=total, window=window, noise=0.01)
    analysis = analyze_run(planted.run)
    assert not analysis.settings.every_step_logged
    for scenario, (a, b) in planted.decay.items():
        for depth in DEPTHS:
            e = analysis.get(scenario, depth)
            assert e.decay_constant == pytest.approx(a, abs=0.02)
            assert e.intercept == pytest.approx(b, abs=0.02)
            ts = analysis.retainability
            ts = ts[(ts.scenario == scenario) & (ts.depth == depth)]
            # every interval is a logged step minus some probe's t_LAM (never interpolated)
            lam = analysis.acquisition
            lam = lam[(lam.scenario == scenario) & (lam.depth == depth)]
            lam = set(lam[lam.injection == lam.injection.max()].lam_step)
            offsets = {int(s - m) for s in keep for m in lam if s >= m}
            assert set(ts.t) <= offsets


def test_sum_statistic_scales_gains_but_not_retainability(analysis, planted):
    total = analyze_run(planted.run, stat="target_sum")
    for s in analysis.scenarios():
        for d in DEPTHS:
            a, b = analysis.get(s, d), total.get(s, d)
            assert b.effectivity == pytest.approx(3 * a.effectivity, rel=1e-4)
            assert b.decay_constant == pytest.approx(a.decay_constant, abs=1e-4)
    with pytest.raises(DataError, match="not logged"):
        analyze_run(planted.run, stat="first")
    with pytest.raises(DataError, match="--stat must be one of"):  # a 0/1 flag, not ℓ
        analyze_run(planted.run, stat="greedy")


def test_trajectories_average_delta_over_probes(planted, analysis):
    traj = analysis.trajectories
    assert list(traj.columns) == [
        "step",
        "tokens",
        "scenario",
        "depth",
        "delta",
        "ci_low",
        "ci_high",
        "n",
    ]
    assert set(traj.scenario) == {"duplicate", "once", "control"}
    ctrl = traj[(traj.scenario == "control")]
    np.testing.assert_allclose(ctrl.delta, 0, atol=1e-5)  # drift-corrected controls are flat
    raw = analyze_run(planted.run, drift_correct=False).trajectories
    ell = planted.run.stat("target_mean").astype(float)
    probes = planted.run.probes
    cols = ((probes.scenario == "once") & (probes.depth == "semantic")).to_numpy()
    want = (ell[:, cols] - ell[0, cols]).mean(axis=1)
    got = raw[(raw.scenario == "once") & (raw.depth == "semantic")].delta.to_numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_per_item_sparse_log_gives_the_every_step_decay_constants():
    """A log as ``sparse`` writes it (each item only at its own steps, NaN elsewhere; the
    controls everywhere) must give the decay constants of the every-step log."""
    planted = planted_run(total=600, window=10, noise=0.01, n_controls=2)
    run = planted.run
    by_item = run.injections.groupby("item").step.apply(sorted).to_dict()
    items = [by_item.get(i, []) for i in range(int(run.probes["item"].max()) + 1)]
    steps, mask = eval_schedule("sparse", items, 10, 600, 25)
    rows = np.searchsorted(run.steps, steps)
    logprobs = np.array(run.logprobs[rows])
    logprobs[~mask[:, run.probes["item"].to_numpy()]] = np.nan
    assert (
        np.isnan(logprobs[:, :, 0]).any()
        and not np.isnan(logprobs[:, run.probes.scenario == "control", 0]).any()
    )
    sparse = dataclasses.replace(run, steps=steps, logprobs=logprobs)
    every, thin = analyze_run(run), analyze_run(sparse)
    for scenario in planted.decay:
        for depth in DEPTHS:
            a, b = every.get(scenario, depth), thin.get(scenario, depth)
            assert b.decay_constant == pytest.approx(a.decay_constant, abs=0.01)
            assert b.effectivity == pytest.approx(a.effectivity, abs=1e-6)


def test_noise_floor_and_snr_from_planted_control_noise():
    """Controls at a constant level plus i.i.d. N(0, σ²) per logged step: one step moves a
    probe by N(0, 2σ²), whose median absolute value is σ·√2·0.6745. On a sparse log only
    steps one update apart count (a longer gap would add drift and learning)."""
    sigma = 0.05
    planted = planted_run(n_controls=6, seed=3)
    run = planted.run
    rng = np.random.default_rng(4)
    ctrl = (run.probes.scenario == "control").to_numpy()
    logprobs = np.array(run.logprobs)
    shape = (len(run.steps), int(ctrl.sum()))
    logprobs[:, ctrl, :] = (-2.0 + rng.normal(0, sigma, shape))[..., None]
    noisy = dataclasses.replace(run, logprobs=logprobs)
    want = sigma * np.sqrt(2) * 0.6745
    analysis = analyze_run(noisy)
    for depth in DEPTHS:
        assert analysis.settings.noise_floor[depth] == pytest.approx(want, rel=0.08)
        lo, hi = analysis.settings.noise_floor_ci[depth]  # over control items
        assert lo <= want <= hi and hi - lo < 0.5 * want
        lo, hi = analysis.settings.control_drift_last_ci[depth]  # no drift planted
        assert lo <= 0 <= hi
        for scenario in ("duplicate", "once"):
            p = analysis.get(scenario, depth)
            assert p.snr == pytest.approx(p.effectivity / analysis.settings.noise_floor[depth])
            floor = analysis.settings.noise_floor[depth]
            assert p.snr_ci == pytest.approx(tuple(v / floor for v in p.effectivity_ci))
    # every other step dropped, but for a stretch logged at every step
    rows = np.flatnonzero((run.steps % 7 == 0) | ((run.steps >= 300) & (run.steps < 600)))
    sparse = dataclasses.replace(noisy, steps=run.steps[rows], logprobs=logprobs[rows])
    mem = ctrl & (run.probes.depth == "memorization").to_numpy()
    moves = np.abs(np.diff(logprobs[rows][:, mem, 0], axis=0))[np.diff(run.steps[rows]) == 1]
    got = analyze_run(sparse).settings.noise_floor
    assert got["memorization"] == pytest.approx(float(np.median(moves)), rel=1e-6)
