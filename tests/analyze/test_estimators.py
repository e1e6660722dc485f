"""The two estimators beside the paper's R̄(t), against hand computations on planted probes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from factdyn.analyze.estimators import GAIN_FLOOR, alternative_fits

T = np.arange(0, 40, dtype=np.float64)


def line_fit(t: np.ndarray, y: np.ndarray, w: np.ndarray | None = None):
    """(a, b, R²) of y = b − a·log10 t over t ≥ 1 by numpy's polyfit, weighted by ``w``."""
    use = t >= 1
    x, y = np.log10(t[use]), y[use]
    w = np.ones(len(x)) if w is None else w[use]
    slope, b = np.polyfit(x, y, 1, w=np.sqrt(w))
    mean = np.average(y, weights=w)
    r2 = 1 - np.sum(w * (y - (b + slope * x)) ** 2) / np.sum(w * (y - mean) ** 2)
    return -slope, b, r2


def planted(rng, n_items=8, per_item=3):
    """Probes with gains from 0.02 to 1.5 nat whose numerators follow g·(1 − 0.3·log10 t)
    plus noise: small gains make wild ratios."""
    items = np.repeat(np.arange(n_items), per_item)
    gain = rng.uniform(0.02, 1.5, len(items))
    decay = 1 - 0.3 * np.log10(np.maximum(T, 1))
    numerator = gain[None, :] * decay[:, None] + rng.normal(0, 0.05, (len(T), len(items)))
    return items, gain, numerator / gain[None, :]


def test_ratio_of_means_divides_summed_numerators_by_summed_gains():
    rng = np.random.default_rng(0)
    items, gain, r = planted(rng)
    r[5:9, 2] = np.nan  # a probe without R at some t leaves both sums there
    fits = alternative_fits(items, gain, T, r, 0.05, 1.5, True, 0, 0)
    valid = ~np.isnan(r)
    curve = np.array(
        [np.sum(r[u, valid[u]] * gain[valid[u]]) / np.sum(gain[valid[u]]) for u in range(len(T))]
    )
    a, b, r2 = line_fit(T, curve, valid.sum(axis=1))  # each t weighs as the probes behind it
    got = fits["ratio_of_means"]
    assert got.decay_constant == pytest.approx(a, rel=1e-9)
    assert got.intercept == pytest.approx(b, rel=1e-9)
    assert got.r2 == pytest.approx(r2, rel=1e-9)
    assert got.n_probes == len(items)
    assert math.isnan(got.decay_constant_ci[0])  # no resamples: no interval


def test_gain_floor_keeps_only_probes_above_the_floor():
    rng = np.random.default_rng(1)
    items, gain, r = planted(rng)
    noise = 0.1
    keep = gain > GAIN_FLOOR * noise
    assert 0 < keep.sum() < len(keep)
    # a huge IQR factor filters nothing: the paper's estimator is then the plain mean
    fits = alternative_fits(items, gain, T, r, noise, 1e9, True, 0, 0)
    a, b, r2 = line_fit(T, r[:, keep].mean(axis=1))
    got = fits["gain_floor"]
    assert (got.decay_constant, got.intercept, got.r2) == pytest.approx((a, b, r2), rel=1e-9)
    assert got.n_probes == keep.sum()
    # without controls there is no noise floor, so no such fit
    none = alternative_fits(items, gain, T, r, math.nan, 1e9, True, 0, 0)["gain_floor"]
    assert math.isnan(none.decay_constant) and none.n_probes == 0


def test_intervals_cover_a_planted_decay_constant_and_shrink_with_items():
    """Probes of a power-law decay (a = 0.3) with noise: over 40 planted logs each estimator's
    item-bootstrap interval holds 0.3 in most of them (95% nominal; the floor at 0.3 nat keeps
    the ratios of small gains out of the IQR-filtered mean), and 4× the items about halve
    the interval."""
    covered = {"gain_floor": 0, "ratio_of_means": 0}
    widths = {10: [], 40: []}
    for seed in range(40):
        for n_items in (10, 40) if seed < 10 else (10,):
            items, gain, r = planted(np.random.default_rng(seed), n_items=n_items)
            fits = alternative_fits(items, gain, T, r, 0.1, 1.5, True, 200, seed)
            lo, hi = fits["ratio_of_means"].decay_constant_ci
            widths[n_items].append(hi - lo)
            if n_items == 10:
                for name, f in fits.items():
                    covered[name] += f.decay_constant_ci[0] <= 0.3 <= f.decay_constant_ci[1]
    assert min(covered.values()) >= 32, covered  # ≥ 80% of 40
    assert 0.3 < np.median(widths[40]) / np.median(widths[10]) < 0.75
