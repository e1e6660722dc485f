"""Confidence intervals by a bootstrap over items (issue 13: every number with an interval).

The probes of one item are not independent (they ask about one paragraph, learned in one
batch), so the unit resampled is the item: a resample draws the population's items with
replacement and recomputes, from those items' probes, every step from the per-probe gains
and retainabilities on: the IQR filter, the per-injection effectivity and its mean, R̄(t),
the weights of a sparse log and the power-law fit with its x-intercept. All resamples are
computed at once: the IQR-filtered means in a compiled loop (numba), the rest with numpy.

The per-probe quantities themselves (t_LAM, gains, R(q, t)) do not change when the set of
items changes, because each depends on its own probe only; the drift correction is held at
its estimate from all control items.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from factdyn.analyze.fit import probe_step_weights
from factdyn.errors import DataError

LEVEL = 0.95
RESAMPLES = 1000  # the default; $FACTDYN_RESAMPLES overrides it (the tests use fewer)

Interval = tuple[float, float]  # (low, high)
# where an interval's bounds sit: in an Interval, and on the last axis of an array of them
LOW, HIGH = 0, 1
NO_INTERVAL: Interval = (math.nan, math.nan)  # undefined: no resamples, or none defined


@dataclass(frozen=True, eq=False)
class Replicates:
    """The bootstrap replicates (B,) of a population's numbers, kept in memory so that a
    comparison (a difference between depths, scenarios or runs) gets its own interval:
    replicate j of every depth of a scenario comes from the same draw of items, so the
    replicates of two populations pair up; different scenarios and runs draw independently."""

    effectivity: np.ndarray
    effectivity_per_injection: np.ndarray  # (B, N)
    decay_constant: np.ndarray
    intercept: np.ndarray
    r2: np.ndarray
    x_intercept_tokens: np.ndarray


@dataclass(frozen=True)
class PopulationIntervals:
    """Percentile intervals (``LEVEL``) of one scenario × depth's numbers over resamples."""

    effectivity: Interval
    effectivity_per_injection: tuple[Interval, ...]
    retainability: tuple[Interval, ...]  # at each t of the population's retainability_steps
    decay_constant: Interval
    intercept: Interval
    x_intercept_steps: Interval
    x_intercept_tokens: Interval
    r2: Interval
    replicates: Replicates | None = None  # None: no resamples


@numba.njit(parallel=True, cache=True)
def _filtered_means_kernel(
    v: np.ndarray, column: np.ndarray, n_scored: np.ndarray, counts: np.ndarray, factor: float
) -> np.ndarray:  # pragma: no cover - compiled; tested through filtered_means
    """Rows ``v`` (R, P) sorted ascending in their first ``n_scored`` entries, ``column``
    (R, P) each sorted entry's original column, ``counts`` (B, P): the filtered means (B, R).
    Per resample and row: the total count, one walk of the cumulative counts to the two
    quartiles' neighbours (numpy's linear interpolation over the expanded multiset) and one
    pass summing the kept values with their multiplicities."""
    n_res, n_rows = counts.shape[0], v.shape[0]
    out = np.empty((n_res, n_rows))
    for b in numba.prange(n_res):
        c = counts[b]
        for r in range(n_rows):
            m = n_scored[r]
            n = 0
            for j in range(m):
                n += c[column[r, j]]
            if n == 0:
                out[b, r] = np.nan
                continue
            pos1, pos3 = 0.25 * (n - 1), 0.75 * (n - 1)
            k1, k3 = int(pos1), int(pos3)
            want = (k1, min(k1 + 1, n - 1), k3, min(k3 + 1, n - 1))
            got = np.empty(4)
            cum, w = 0, 0
            for j in range(m):
                cum += c[column[r, j]]
                while w < 4 and want[w] < cum:
                    got[w] = v[r, j]
                    w += 1
                if w == 4:
                    break
            q1 = got[0] + (got[1] - got[0]) * (pos1 - k1)
            q3 = got[2] + (got[3] - got[2]) * (pos3 - k3)
            lo, hi = q1 - factor * (q3 - q1), q3 + factor * (q3 - q1)
            total, kept = 0.0, 0
            for j in range(m):
                x = v[r, j]
                if lo <= x <= hi:
                    k = c[column[r, j]]
                    kept += k
                    total += k * x
            out[b, r] = total / kept if kept > 0 else np.nan
    return out


def filtered_means(values: np.ndarray, counts: np.ndarray, factor: float) -> np.ndarray:
    """:func:`~factdyn.analyze.metrics.filtered_mean` of each row of ``values`` (R, P) for
    each resample, given as multiplicities ``counts`` (B, P) of the P columns: (B, R).

    A resample is a multiset of the original values, so each row is sorted once and every
    resample reads it with its counts: the quartiles by cumulative counts, the kept values
    summed with their multiplicities, no per-resample sort. A compiled loop (numba, over
    resamples in parallel), because numpy would make a dozen passes over B × R × P arrays.
    """
    order = np.argsort(values, axis=1)  # NaN last
    v = np.ascontiguousarray(np.take_along_axis(values, order, axis=1), dtype=np.float64)
    n_scored = (~np.isnan(v)).sum(axis=1)
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    return _filtered_means_kernel(v, np.ascontiguousarray(order), n_scored, counts, factor)


def default_resamples() -> int:
    """``$FACTDYN_RESAMPLES`` if set (a count ≥ 0), else :data:`RESAMPLES`."""
    value = os.environ.get("FACTDYN_RESAMPLES", str(RESAMPLES))
    if not value.isdigit():
        raise DataError(f"environment variable FACTDYN_RESAMPLES: expected a count, not {value!r}")
    return int(value)


def percentiles(x: np.ndarray) -> np.ndarray:
    """(…, 2) lower and upper percentile along axis 0 (at :data:`LOW`, :data:`HIGH`), NaN
    resamples left out; inverted-CDF quantiles, so an infinite x-intercept in the tail is an
    infinite bound, not NaN."""
    tail = round((1 - LEVEL) / 2, 12)  # 0.025, not 0.025000000000000022
    with warnings.catch_warnings():  # a quantity undefined in every resample: NaN bounds
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = _nanquantile(x, tail), _nanquantile(x, 1 - tail)
    return np.stack([lo, hi], axis=-1)


def _nanquantile(x: np.ndarray, q: float) -> np.ndarray:
    """``np.nanquantile(x, q, axis=0, method="inverted_cdf")``, the same numbers, faster:
    numpy takes a column with NaN one at a time, so only those columns go that way."""
    if x.ndim == 0 or len(x) == 0:
        return np.nanquantile(x, q, axis=0, method="inverted_cdf")
    flat = x.reshape(len(x), -1)
    out = np.quantile(flat, q, axis=0, method="inverted_cdf")
    gaps = np.isnan(flat).any(axis=0)
    if gaps.any():
        out[gaps] = np.nanquantile(flat[:, gaps], q, axis=0, method="inverted_cdf")
    return out.reshape(x.shape[1:])


def intervals_of(x: np.ndarray) -> tuple[Interval, ...]:
    return tuple((float(lo), float(hi)) for lo, hi in x.reshape(-1, 2))


def interval_of(replicates: np.ndarray) -> Interval:
    """One quantity's percentile interval over its replicates (B,); NaN bounds without any."""
    return intervals_of(percentiles(replicates))[0] if len(replicates) else NO_INTERVAL


def fit_many(
    t: np.ndarray, r: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares of each row of ``r`` (B, U) on log10 t, weights ``w`` (B, U)
    (0 = not used): the decay constants a, intercepts b and R², NaN where a row has fewer than
    two distinct t; the same estimator as :func:`factdyn.analyze.fit.fit_power_law`."""
    x = np.log10(np.maximum(t, 1.0))
    use = (w > 0) & np.isfinite(r) & (t >= 1)
    w = np.where(use, w, 0.0)
    y = np.where(use, r, 0.0)
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = (w @ x) / total
        ym = (w * y).sum(axis=1) / total
        dx = x[None, :] - xm[:, None]
        sxx = (w * dx**2).sum(axis=1)
        slope = (w * dx * (y - ym[:, None])).sum(axis=1) / sxx
    n_t = (use & (t >= 1)).sum(axis=1)
    xs = np.where(use, x, np.nan)
    spread = np.nanmax(xs, axis=1, initial=-np.inf) - np.nanmin(xs, axis=1, initial=np.inf)
    ok = (n_t >= 2) & (spread > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        resid = y - (ym[:, None] + slope[:, None] * dx)
        r2 = 1 - (w * resid**2).sum(axis=1) / (w * (y - ym[:, None]) ** 2).sum(axis=1)
    nan = np.nan
    return np.where(ok, -slope, nan), np.where(ok, ym - slope * xm, nan), np.where(ok, r2, nan)


def _x_intercepts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """τ = 10^(b/a) elementwise, with :func:`factdyn.analyze.fit.x_intercept`'s conventions."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        tau = np.where(a > 0, np.power(10.0, np.minimum(b / a, 309.0)), np.nan)
    tau = np.where((a <= 0) & (b > 0), np.inf, tau)
    return np.where(np.isfinite(a) & np.isfinite(b), tau, np.nan)


def probe_counts(items: np.ndarray, resamples: int, seed: int | Sequence[int]) -> np.ndarray:
    """(B, P) how often each probe is drawn in each resample: resample j draws the items
    ``default_rng(seed).integers(0, n_items, (resamples, n_items))[j]`` (items in increasing
    id order), and a probe comes with its item."""
    ids, item_of = np.unique(np.asarray(items), return_inverse=True)
    draws = np.random.default_rng(seed).integers(0, len(ids), size=(resamples, len(ids)))
    offsets = len(ids) * np.arange(resamples)[:, None]
    drawn = np.bincount((draws + offsets).ravel(), minlength=resamples * len(ids))
    return drawn.reshape(resamples, len(ids)).astype(np.int32)[:, item_of]


def mean_replicates(
    values: np.ndarray, items: np.ndarray, resamples: int, seed: int | Sequence[int]
) -> np.ndarray:
    """(B, L) the mean over probes of ``values`` (P, L) at each of its L columns (NaN: not
    scored there) in each resample, items resampled as in :func:`probe_counts`."""
    counts = probe_counts(items, resamples, seed).astype(np.float64)
    valid = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts @ np.where(valid, values, 0.0)) / (counts @ valid)


def mean_intervals(
    values: np.ndarray, items: np.ndarray, resamples: int, seed: int | Sequence[int]
) -> np.ndarray:
    """(L, 2) interval of :func:`mean_replicates`; NaN bounds with ``resamples=0``."""
    if resamples == 0 or len(items) == 0:
        return np.full((values.shape[1], 2), np.nan)
    return percentiles(mean_replicates(values, items, resamples, seed))


@numba.njit(parallel=True, cache=True)
def _medians_kernel(
    v: np.ndarray, owner: np.ndarray, counts: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled; tested through median_interval
    """The median (numpy's: the mean of the two middle values of an even count) of the values
    ``v`` (N,), sorted ascending, each repeated ``counts[b, owner[j]]`` times, per resample b."""
    out = np.empty(counts.shape[0])
    for b in numba.prange(counts.shape[0]):
        c = counts[b]
        n = 0
        for j in range(len(v)):
            n += c[owner[j]]
        if n == 0:
            out[b] = np.nan
            continue
        k_lo, k_hi = (n - 1) // 2, n // 2
        lo = np.nan
        cum = 0
        for j in range(len(v)):
            cum += c[owner[j]]
            if np.isnan(lo) and k_lo < cum:
                lo = v[j]
            if k_hi < cum:
                out[b] = (lo + v[j]) / 2
                break
    return out


def median_interval(
    values: np.ndarray, items: np.ndarray, resamples: int, seed: int | Sequence[int]
) -> Interval:
    """Interval of the median of all of ``values`` (P, K) (NaN ignored), items resampled as
    in :func:`probe_counts`; a resample repeats each probe's row as often as it is drawn.
    The values are sorted once; each resample walks them with its counts (compiled)."""
    if resamples == 0 or len(items) == 0:
        return NO_INTERVAL
    values = np.asarray(values, dtype=np.float64)
    rows, _ = np.nonzero(~np.isnan(values))
    flat = values[~np.isnan(values)]
    order = np.argsort(flat, kind="stable")
    counts = probe_counts(items, resamples, seed).astype(np.int64)
    medians = _medians_kernel(flat[order], rows[order].astype(np.int64), counts)
    return interval_of(medians)


def bootstrap_population(
    items: np.ndarray,
    gains: np.ndarray,
    t: np.ndarray,
    r: np.ndarray,
    iqr: float,
    tokens_per_step: int,
    every_step: bool,
    resamples: int,
    seed: int | Sequence[int] = 0,
) -> PopulationIntervals:
    """Intervals for one population from its per-probe arrays, items resampled as in
    :func:`probe_counts`.

    ``items`` (P,) is each probe's item, ``gains`` (P, N) the per-injection gains (NaN:
    undefined), ``t`` (U,) the retainability intervals of the population's R̄ and ``r`` (U, P)
    each probe's R there (NaN: not logged or excluded, already in the unit R̄ is reported in).
    ``every_step``: every t of every kept probe is observed, so the fit is ordinary least
    squares; otherwise each point is weighted as the population's own fit weights it.
    ``resamples=0`` gives undefined (NaN) intervals.
    """
    if resamples == 0 or len(items) == 0:
        nan, n = NO_INTERVAL, (NO_INTERVAL,)
        return PopulationIntervals(nan, n * gains.shape[1], n * len(t), nan, nan, nan, nan, nan)
    counts = probe_counts(items, resamples, seed)
    t = np.asarray(t, dtype=np.float64)
    per_probe = np.ones(r.shape) if every_step else probe_step_weights(t, ~np.isnan(r))
    weight = counts @ np.where(np.isnan(r), 0.0, per_probe).T  # (B, U) fit weights
    eff = filtered_means(gains.T, counts, iqr)  # (B, N)
    r_bar = filtered_means(r, counts, iqr)  # (B, U)
    with warnings.catch_warnings():  # a resample whose injections all lack a gain: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        e_mean = np.nanmean(eff, axis=1)
    a, b, r2 = fit_many(t, r_bar, weight)
    tau = _x_intercepts(a, b)
    with np.errstate(over="ignore"):  # a τ near 10^308 steps is an infinite one in tokens
        replicates = Replicates(e_mean, eff, a, b, r2, tau * tokens_per_step)
    return PopulationIntervals(
        effectivity=interval_of(e_mean),
        effectivity_per_injection=intervals_of(percentiles(eff)),
        retainability=intervals_of(percentiles(r_bar)),
        decay_constant=interval_of(a),
        intercept=interval_of(b),
        x_intercept_steps=interval_of(tau),
        x_intercept_tokens=interval_of(replicates.x_intercept_tokens),
        r2=interval_of(r2),
        replicates=replicates,
    )
