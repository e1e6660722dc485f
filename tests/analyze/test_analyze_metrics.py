"""Hand-computed cases for every definition of docs/method.md (window, ties, exclusion, sparse, IQR)."""

from __future__ import annotations

import numpy as np
import pytest

from factdyn.analyze.fit import fit_power_law, step_weights, x_intercept
from factdyn.analyze.metrics import (
    NO_ROW,
    acquisition,
    filtered_mean,
    iqr_keep,
    last_index,
    nan_quartiles,
    retainability,
)

nan = np.nan


def col(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)[:, None]


def test_ties_in_the_window_take_the_first_maximum_and_t_i_itself_is_not_a_candidate():
    steps = np.arange(6)
    ell = col(10, 1, 3, 3, 2, 1)  # ℓ at t_i (10) is outside (t_i, t_i + t_w]
    acq = acquisition(steps, ell, np.array([[0]]), window=4)
    assert acq.lam_row.tolist() == [[2]]
    assert acq.lam_step.tolist() == [[2]]
    assert acq.gain.tolist() == [[3 - 10]]
    assert acq.window_complete.tolist() == [[True]]


def test_window_end_is_inclusive_and_nothing_after_it_counts():
    acq = acquisition(np.arange(6), col(0, 1, 2, 3, 4, 5), np.array([[0]]), window=3)
    assert acq.lam_step.tolist() == [[3]]
    assert acq.gain.tolist() == [[3.0]]


def test_every_injection_of_a_probe_has_its_own_window_and_padding_is_ignored():
    steps = np.arange(12)
    ell = np.array(
        [[0, 0, 1, 0.5, 0.5, 0.5, 0.5, 2, 1.5, 1.5, 1.5, 1.5], [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]
    ).T
    inj = np.array([[0, 5], [0, -1]])  # probe 1's item has one injection
    acq = acquisition(steps, ell, inj, window=3)
    assert acq.lam_step.tolist() == [[2, 7], [1, NO_ROW]]
    np.testing.assert_allclose(acq.gain, [[1.0, 1.5], [1.0, nan]])
    assert acq.valid.tolist() == [[True, True], [True, False]]
    assert last_index(acq.valid).tolist() == [1, 0]


def test_zero_and_negative_acquisition_are_excluded_and_the_reference_excludes_only_zero():
    steps = np.arange(6)
    ell = np.array(
        [
            [0, 1, 2, 1.5, 1, 0.5],  # rising: t_LAM = 2, gain 2
            [1, 1, 1, 1, 1, 1],  # flat: t_LAM = 1 (first of ties), gain 0
            [5, 4, 3, 2, 1, 0],  # falling: t_LAM = 1, gain -1
        ]
    ).T
    acq = acquisition(steps, ell, np.zeros((3, 1), np.int64), window=2)
    assert acq.lam_step[:, 0].tolist() == [2, 1, 1]
    np.testing.assert_allclose(acq.gain[:, 0], [2, 0, -1])
    pre = acq.base_row[:, 0]

    ret = retainability(steps, ell, acq.lam_row[:, 0], pre)
    assert ret.excluded.tolist() == [False, True, True]
    assert ret.t.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(ret.r[:, 0], [1, 0.75, 0.5, 0.25])
    assert np.isnan(ret.r[:, 1:]).all()

    ref = retainability(steps, ell, acq.lam_row[:, 0], pre, exclude="zero")
    assert ref.excluded.tolist() == [False, True, False]
    assert ref.t.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(ref.r[:, 0], [1, 0.75, 0.5, 0.25, nan])
    np.testing.assert_allclose(ref.r[:, 2], [1, 2, 3, 4, 5])  # (ℓ − 5) / (−1)


def test_window_past_the_end_of_the_log_uses_what_exists_and_says_so():
    steps = np.arange(4)
    ell = col(0, 1, 2, 3)
    acq = acquisition(steps, ell, np.array([[1, 3]]), window=5)
    assert acq.lam_step.tolist() == [[3, NO_ROW]]  # only step 3 of (1, 6] was logged
    np.testing.assert_allclose(acq.gain, [[2.0, nan]])  # nothing at all after step 3
    assert acq.window_complete.tolist() == [[False, False]]
    ret = retainability(steps, ell, acq.lam_row[:, 1], acq.base_row[:, 0])
    assert ret.excluded.tolist() == [True]  # no t_LAM(q, N): no retainability
    assert len(ret.t) == 0 and ret.r.shape == (0, 1)


def test_sparse_log_uses_only_logged_steps_and_interpolates_nothing():
    steps = np.array([0, 1, 2, 5, 9, 20])
    ell = np.array([[0, 1, 2, 4, 3, 1], [0, 3, 2, 1, 0.5, 0.2]], dtype=float).T
    acq = acquisition(steps, ell, np.zeros((2, 1), np.int64), window=10)
    assert acq.lam_step[:, 0].tolist() == [5, 1]  # step 10 of the window was never logged
    np.testing.assert_allclose(acq.gain[:, 0], [4, 3])
    assert acq.window_complete.tolist() == [[True], [True]]
    ret = retainability(steps, ell, acq.lam_row[:, 0], acq.base_row[:, 0])
    assert ret.t.tolist() == [0, 1, 4, 8, 15, 19]
    np.testing.assert_allclose(ret.r[:, 0], [1, nan, 0.75, nan, 0.25, nan])
    np.testing.assert_allclose(ret.r[:, 1], [1, 2 / 3, 1 / 3, 1 / 6, nan, 0.2 / 3])
    mean, n, out = filtered_mean(ret.r, 1.5)  # rows = t, both probes one population
    np.testing.assert_allclose(mean, [1, 2 / 3, (0.75 + 1 / 3) / 2, 1 / 6, 0.25, 0.2 / 3])
    assert n.tolist() == [2, 1, 2, 1, 1, 1] and out.tolist() == [0] * 6


def test_an_injection_step_that_was_not_logged_gives_no_effectivity():
    acq = acquisition(np.array([0, 5, 10]), col(0, 1, 2), np.array([[3]]), window=5)
    assert acq.base_row.tolist() == [[NO_ROW]]
    assert acq.lam_step.tolist() == [[5]]
    assert np.isnan(acq.gain).all()


def test_iqr_rule_counts_removed_values_and_ignores_nan():
    mean, n, out = filtered_mean(np.array([1.0, 2, 3, 4, 100]), 1.5)  # Q1 2, Q3 4: [−1, 7]
    assert (float(mean), int(n), int(out)) == (2.5, 4, 1)
    x = np.array([[1.0, 2, nan, 3, 4, 100], [1, 2, 3, 4, 7, nan], [nan] * 6])
    mean, n, out = filtered_mean(x, 1.5)
    np.testing.assert_allclose(mean, [2.5, 3.4, nan])  # 7 is exactly on the upper bound
    assert n.tolist() == [4, 5, 0] and out.tolist() == [1, 0, 0]
    assert iqr_keep(np.array([1.0, 2, 3, 4, 5]), 0.0).tolist() == [False, True, True, True, False]


def test_quartiles_match_numpy_for_any_nan_pattern():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 17))
    x[rng.random(x.shape) < 0.3] = nan
    x[3] = nan
    q1, q3 = nan_quartiles(x)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref = np.nanpercentile(x, [25, 75], axis=1)
    np.testing.assert_allclose(q1, ref[0])
    np.testing.assert_allclose(q3, ref[1])


def test_fit_three_points_by_hand():
    # x = log10 t = 0, 1, 2; y = 1.0, 0.7, 0.5: slope −0.25, intercept 0.98333,
    # residuals (1/60, −1/30, 1/60), SSE 1/600, Sxx 2, SST 0.126667
    fit = fit_power_law(np.array([0, 1, 10, 100]), np.array([9.0, 1.0, 0.7, 0.5]))  # t=0 unused
    assert fit.n_points == 3
    assert fit.a == pytest.approx(0.25)
    assert fit.b == pytest.approx(0.983333, abs=1e-6)
    assert fit.se_a == pytest.approx(np.sqrt((1 / 600) / 1 / 2))
    assert fit.r2 == pytest.approx(1 - (1 / 600) / 0.1266667, abs=1e-6)
    assert fit.x_intercept_steps == pytest.approx(10 ** (0.983333 / 0.25), rel=1e-5)


def test_step_weights_by_hand():
    one = np.ones((6, 1), bool)
    np.testing.assert_array_equal(step_weights(np.arange(3, 9), one), np.ones(6))
    np.testing.assert_array_equal(step_weights(np.arange(3, 9), np.ones((6, 4), bool)), 4.0)
    # one probe: midpoints of the neighbours, t − 1 and t + 1 beyond the ends: 0, 1, 2, 4, 8, 9
    t = np.array([1, 2, 4, 8])
    np.testing.assert_allclose(step_weights(t, np.ones((4, 1), bool)), [1.0, 1.5, 3.0, 2.5])
    # two probes at interleaved t: probe A at 1, 4; probe B at 2, 8. Each covers the whole
    # range 0.5 … 8.5: A splits it at 2.5 (2 + 6), B at 5 (4.5 + 3.5)
    seen = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], bool)
    np.testing.assert_allclose(step_weights(t, seen), [2.0, 4.5, 6.0, 3.5])


def test_weighted_fit_is_the_fit_of_repeated_points():
    rng = np.random.default_rng(0)
    t = np.array([1, 2, 5, 20, 90, 400])
    r = 0.8 - 0.2 * np.log10(t) + rng.normal(0, 0.05, len(t))
    w = np.array([1, 3, 2, 5, 1, 4])
    fit = fit_power_law(t, r, w)
    rep = fit_power_law(np.repeat(t, w), np.repeat(r, w))  # integer weights = copies
    assert (fit.a, fit.b, fit.r2) == pytest.approx((rep.a, rep.b, rep.r2))
    slope, intercept = np.polyfit(np.log10(t), r, 1, w=np.sqrt(w))  # numpy weights residuals
    assert (fit.a, fit.b) == pytest.approx((-slope, intercept))


def test_sparse_points_weighted_by_their_steps_reproduce_the_every_step_fit():
    # a retainability that bends in log t: the every-step least squares is the reference
    t = np.arange(1, 2001)
    r = 1.0 - 0.4 * np.log10(t) + 0.05 * np.log10(t) ** 2  # every-step fit: a ≈ 0.154
    slope, intercept = np.polyfit(np.log10(t), r, 1)
    dense = np.arange(1, 51)  # a window logged at every step, then 30 log-spaced steps
    sparse = np.unique(np.concatenate([dense, 50 + np.geomspace(1, 1950, 30).round()]))
    rs = 1.0 - 0.4 * np.log10(sparse) + 0.05 * np.log10(sparse) ** 2
    weighted = fit_power_law(sparse, rs, step_weights(sparse, np.ones((len(sparse), 1), bool)))
    assert weighted.a == pytest.approx(-slope, abs=0.002)
    assert weighted.b == pytest.approx(intercept, abs=0.01)
    assert abs(fit_power_law(sparse, rs).a + slope) > 0.05  # unweighted: the windows dominate


def test_fit_exact_line_and_degenerate_cases():
    t = np.arange(0, 200)
    fit = fit_power_law(t, 0.9 - 0.25 * np.log10(np.maximum(t, 1)))
    assert (fit.a, fit.b, fit.r2) == pytest.approx((0.25, 0.9, 1.0))
    assert fit.se_a == pytest.approx(0, abs=1e-12)
    assert fit.x_intercept_steps == pytest.approx(10**3.6)
    flat = fit_power_law(t, np.full(len(t), 0.5))
    assert flat.a == 0 and flat.x_intercept_steps == np.inf and np.isnan(flat.r2)
    assert np.isnan(fit_power_law(np.array([0, 5]), np.array([1.0, 0.5])).a)  # one point
    assert np.isnan(fit_power_law(np.array([3, 3]), np.array([1.0, 0.5])).a)  # one t
    assert np.isnan(x_intercept(-0.1, -0.5))  # rising from below 0: no forgetting point
    assert x_intercept(1e-9, 1.0) == np.inf  # overflow
    assert np.isnan(x_intercept(nan, 1.0))
