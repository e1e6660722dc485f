"""The item bootstrap: equal to a one-resample-at-a-time reference, and honest on planted data."""

from __future__ import annotations

import numpy as np
import pytest

from factdyn.analyze.bootstrap import (
    bootstrap_population,
    filtered_means,
    mean_intervals,
    median_interval,
    probe_counts,
)
from factdyn.analyze.fit import fit_power_law, step_weights
from factdyn.analyze.metrics import filtered_mean


@pytest.mark.parametrize("decimals", [None, 0])
def test_filtered_means_equal_the_filter_on_each_expanded_resample(decimals):
    rng = np.random.default_rng(5)
    values = rng.normal(size=(30, 9))
    if decimals is not None:  # many ties, quartiles and IQR bounds on values themselves
        values = values.round(decimals)
    values[rng.random(values.shape) < 0.2] = np.nan
    values[3, 2] = 40.0  # an outlier the IQR rule removes
    values[7] = np.nan  # a row with nothing
    counts = rng.integers(0, 4, size=(25, 9))
    got = filtered_means(values, counts, 1.5)
    for b, c in enumerate(counts):
        expanded = np.repeat(values, c, axis=1)
        want = filtered_mean(expanded, 1.5)[0]
        np.testing.assert_allclose(got[b], want, rtol=1e-12, atol=1e-12)


def _reference(items, gains, t, r, iqr, tps, every_step, resamples, seed):
    """Each resample on its own, with the functions the analysis itself uses per population."""
    ids = sorted(set(items.tolist()))
    rows = {i: [p for p, it in enumerate(items.tolist()) if it == i] for i in ids}
    draws = np.random.default_rng(seed).integers(0, len(ids), size=(resamples, len(ids)))
    out = {"eff": [], "per": [], "rbar": [], "a": [], "b": [], "r2": []}
    for draw in draws:
        cols = [p for j in draw for p in rows[ids[j]]]
        per_inj = filtered_mean(gains[cols].T, iqr)[0]
        r_bar = filtered_mean(r[:, cols], iqr)[0]
        fitted = np.isfinite(r_bar) & (t >= 1)
        w = None if every_step else step_weights(t, ~np.isnan(r[:, cols]))[fitted]
        fit = fit_power_law(t[fitted], r_bar[fitted], w)
        finite = per_inj[np.isfinite(per_inj)]
        out["eff"].append(finite.mean() if len(finite) else np.nan)
        out["per"].append(per_inj)
        out["rbar"].append(r_bar)
        out["a"].append(fit.a)
        out["b"].append(fit.b)
        out["r2"].append(fit.r2)
    return {k: np.array(v) for k, v in out.items()}


def _q(x):
    return np.nanquantile(x, [0.025, 0.975], axis=0, method="inverted_cdf")


@pytest.mark.parametrize("every_step", [True, False])
def test_bootstrap_equals_resampling_one_at_a_time(every_step):
    rng = np.random.default_rng(1)
    n_items, k, n_inj = 8, 3, 2
    items = np.repeat(np.arange(100, 100 + n_items), k)
    rng.shuffle(items)
    gains = rng.normal(0.3, 0.2, size=(len(items), n_inj))
    gains[2, 1] = np.nan
    t = np.arange(0, 40, dtype=np.float64) if every_step else np.array([0, 1, 2, 5, 9, 17, 30.0])
    r = 1 - 0.2 * np.log10(np.maximum(t, 1))[:, None] + rng.normal(0, 0.1, (len(t), len(items)))
    r[:, 4] = np.nan  # an excluded probe
    if not every_step:  # probes logged at shifted t
        r[rng.random(r.shape) < 0.3] = np.nan
    got = bootstrap_population(items, gains, t, r, 1.5, 512, every_step, resamples=60, seed=3)
    ref = _reference(items, gains, t, r, 1.5, 512, every_step, 60, 3)
    np.testing.assert_allclose(got.effectivity, _q(ref["eff"]), rtol=1e-9)
    np.testing.assert_allclose(got.effectivity_per_injection, _q(ref["per"]).T, rtol=1e-9)
    np.testing.assert_allclose(got.retainability, _q(ref["rbar"]).T, rtol=1e-9)
    np.testing.assert_allclose(got.decay_constant, _q(ref["a"]), rtol=1e-9)
    np.testing.assert_allclose(got.intercept, _q(ref["b"]), rtol=1e-9)
    tau = np.where(ref["a"] > 0, 10.0 ** (ref["b"] / ref["a"]), np.inf)
    np.testing.assert_allclose(got.x_intercept_steps, _q(tau), rtol=1e-9)
    np.testing.assert_allclose(got.x_intercept_tokens, _q(tau * 512), rtol=1e-9)
    rep = got.replicates  # resample by resample, in draw order
    np.testing.assert_allclose(rep.decay_constant, ref["a"], rtol=1e-9)
    np.testing.assert_allclose(rep.r2, ref["r2"], rtol=1e-9)
    np.testing.assert_allclose(rep.effectivity_per_injection, ref["per"], rtol=1e-9)


def test_interval_covers_a_planted_decay_constant_and_is_not_too_wide():
    """200 planted populations: item decay constants a_i ~ N(a, 0.05²) and noise 0.1 per
    (probe, t). The 95% interval should cover a in ≥ 90% of them, and its half-width should
    stay within 3× the analytic standard error of the fitted a."""
    rng = np.random.default_rng(0)
    a, n_items, k, sd_item, noise = 0.3, 20, 3, 0.05, 0.1
    t = np.arange(0, 60, dtype=np.float64)
    x = np.log10(np.maximum(t, 1))
    xs = x[1:]  # the fit uses t ≥ 1
    se = np.sqrt(sd_item**2 / n_items + noise**2 / (n_items * k * ((xs - xs.mean()) ** 2).sum()))
    items = np.repeat(np.arange(n_items), k)
    covered, widths = 0, []
    for _ in range(200):
        a_item = rng.normal(a, sd_item, n_items)[items]
        r = 1 - a_item[None, :] * x[:, None] + rng.normal(0, noise, (len(t), len(items)))
        gains = rng.normal(0.5, 0.1, (len(items), 1))
        ci = bootstrap_population(items, gains, t, r, 1.5, 1, True, resamples=300, seed=1)
        lo, hi = ci.decay_constant
        covered += lo <= a <= hi
        widths.append((hi - lo) / 2)
    assert covered >= 180, covered
    assert np.median(widths) <= 3 * se, (np.median(widths), se)
    assert np.median(widths) >= 0.5 * se  # an interval that ignores the item spread fails


def test_probe_counts_follow_the_item_draws():
    items = np.array([5, 2, 5, 9, 2, 5])
    counts = probe_counts(items, 40, seed=(1, 2))
    draws = np.random.default_rng((1, 2)).integers(0, 3, size=(40, 3))  # items 2, 5, 9
    for c, draw in zip(counts, draws, strict=True):
        per_item = {i: int((draw == k).sum()) for k, i in enumerate((2, 5, 9))}
        assert c.tolist() == [per_item[i] for i in items.tolist()]


def test_mean_intervals_equal_the_mean_of_each_expanded_resample():
    rng = np.random.default_rng(2)
    items = np.repeat(np.arange(6), 2)
    values = rng.normal(size=(12, 15))
    values[3, 4:] = np.nan  # a probe not scored after step 4
    got = mean_intervals(values, items, 80, seed=7)
    means = np.array(
        [np.nanmean(np.repeat(values, c, axis=0), axis=0) for c in probe_counts(items, 80, 7)]
    )
    np.testing.assert_allclose(got, _q(means).T, rtol=1e-12)
    assert np.isnan(mean_intervals(values, items, 0, seed=7)).all()


def test_median_interval_equals_the_median_of_each_expanded_resample():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(12, 7)).round(1)  # ties, and even and odd counts
    values[rng.random(values.shape) < 0.3] = np.nan
    values[4] = np.nan  # a probe with nothing scored
    items = np.repeat(np.arange(4), 3)
    want = [
        np.nanmedian(np.repeat(values, c, axis=0)) if (c @ ~np.isnan(values)).sum() else np.nan
        for c in probe_counts(items, 300, 9)
    ]
    lo, hi = np.nanquantile(want, [0.025, 0.975], method="inverted_cdf")
    assert median_interval(values, items, 300, 9) == (lo, hi)
