"""What the control probes say: the drift every probe undergoes, and how far one moves by chance.

Control probes ask about facts never injected, so their ℓ moves only with the background
training. Their mean per depth is the drift subtracted from every probe of that depth
(docs/method.md); the median one-step move of a control probe is the depth's noise floor, the
yardstick of a signal-to-noise ratio. Whether the correction removes the drift is measured on
the controls themselves: half of them corrected by the other half's mean leave the residual
drift, which should stay within noise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from factdyn.analyze.bootstrap import (
    HIGH,
    LOW,
    NO_INTERVAL,
    Interval,
    mean_replicates,
    median_interval,
    percentiles,
)
from factdyn.analyze.layout import block_means


@dataclass(frozen=True)
class ControlNumbers:
    """Per depth with control probes (others absent), each with its bootstrap interval over
    control items."""

    noise_floor: dict[str, float]  # median |ℓ_{t+1} − ℓ_t| over steps one update apart
    noise_floor_ci: dict[str, Interval]
    drift_last: dict[str, float]  # the controls' mean Δℓ at the last step
    drift_last_ci: dict[str, Interval]
    drift_max: dict[str, float]  # the largest |mean Δℓ| at any logged step
    drift_max_ci: dict[str, Interval]


@dataclass(frozen=True, eq=False)
class DriftCorrection:
    """The control probes' mean ℓ per depth at every step, and what was subtracted."""

    mean: np.ndarray  # (L, D) NaN where a depth has no control scored
    n: np.ndarray  # (L, D) the controls behind each mean
    shift: np.ndarray  # (L, D) subtracted from every probe of the depth (0: not corrected)
    corrected: tuple[str, ...]  # the depths corrected

    def applied(self, ell_t: np.ndarray, depth_code: np.ndarray) -> np.ndarray:
        """The probe-major log ``ell_t`` (P, L) less its depth's shift (as is when none)."""
        return ell_t - self.shift.T[depth_code] if self.corrected else ell_t


def control_means(
    ell_t: np.ndarray, control: np.ndarray, d_code: np.ndarray, n_depths: int
) -> tuple[np.ndarray, np.ndarray]:
    """(L, D) the control probes' mean ℓ per depth at every step, NaN where a depth has none
    scored, and their (L, D) counts: what the drift correction subtracts from every probe of
    that depth."""
    rows = np.flatnonzero(control)
    rows = rows[np.argsort(d_code[rows], kind="stable")]
    codes = d_code[rows]
    bounds = np.flatnonzero(np.diff(codes, prepend=-1)) if len(rows) else np.zeros(0, int)
    block, block_n = block_means(ell_t[rows], bounds, bool(np.isnan(ell_t[rows]).any()))
    mean = np.full((ell_t.shape[1], n_depths), np.nan)
    n = np.zeros((ell_t.shape[1], n_depths), dtype=np.int64)
    mean[:, codes[bounds]], n[:, codes[bounds]] = block, block_n
    return mean, n


def drift_correction(
    ell_t: np.ndarray, control: np.ndarray, d_code: np.ndarray, depths: list[str], on: bool
) -> DriftCorrection:
    """The controls' means of the probe-major log ``ell_t`` (P, L), and, when ``on``, the shift
    of every depth that has controls."""
    mean, n = control_means(ell_t, control, d_code, len(depths))
    shift = np.zeros((ell_t.shape[1], len(depths)))
    corrected: list[str] = []
    if on:
        has = ~np.isnan(mean).all(axis=0)
        corrected = [d for d, h in zip(depths, has, strict=True) if h]
        shift[:, has] = mean[:, has]
    return DriftCorrection(mean, n, shift, tuple(corrected))


def control_numbers(
    steps: np.ndarray,
    ell_t: np.ndarray,
    depth_code: np.ndarray,
    items: np.ndarray,
    depths: list[str],
    resamples: int,
    seed: Sequence[int],
) -> ControlNumbers:
    """What the control probes (rows of ``ell_t``, before any drift correction) say, per
    depth: the noise floor over logged steps one update apart (how far a probe moves by
    chance in one step; the drift over one step is negligible next to it), and the drift at
    the last step and at its largest."""
    one = np.flatnonzero(np.diff(steps) == 1)
    out = ControlNumbers({}, {}, {}, {}, {}, {})
    for k, d in enumerate(depths):
        rows = depth_code == k
        delta = ell_t[rows] - ell_t[rows][:, :1]
        if not rows.any() or np.isnan(delta).all():
            continue
        moves = np.abs(ell_t[rows][:, one + 1] - ell_t[rows][:, one])
        if np.isfinite(moves).any():
            out.noise_floor[d] = float(np.nanmedian(moves))
            out.noise_floor_ci[d] = median_interval(moves, items[rows], resamples, seed)
        mean = np.nanmean(delta, axis=0)
        reps = (
            mean_replicates(delta, items[rows], resamples, seed)
            if resamples
            else np.full((1, len(steps)), np.nan)
        )
        with warnings.catch_warnings():  # undefined in a resample: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            largest = np.nanmax(np.abs(reps), axis=1)
        out.drift_last[d] = float(mean[-1])
        out.drift_last_ci[d] = tuple(map(float, percentiles(reps[:, -1])))
        out.drift_max[d] = float(np.nanmax(np.abs(mean)))
        out.drift_max_ci[d] = tuple(map(float, percentiles(largest)))
    return out


# Streams of the residual drift's random numbers, after the controls' own bootstrap seed (the
# analysis's seed and the controls' position): the split, then each half's item bootstrap
SPLIT_STREAM, HALF_A_STREAM, HALF_B_STREAM = 1, 2, 3
# One split's residual is one draw of a path whose steps move together: on the demo's 30
# controls a single split held zero at >= 95 % of steps in only 7 of 10 random splits, with
# nothing systematic left. The shares and means are averaged over this many splits; the curve
# shown is the first split's.
RESIDUAL_SPLITS = 10


@dataclass(frozen=True, eq=False)
class ResidualDrift:
    """What the correction leaves: half the control items (A) corrected by the mean of the
    other half (B), as every injected probe is corrected by all controls. Arrays per logged
    step and depth; the per-depth numbers only for depths with control probes."""

    residual: np.ndarray  # (L, D) mean corrected Δℓ of half A, first split; NaN: undefined
    ci: np.ndarray  # (L, D, 2) its interval over control items (NaN: no resamples)
    n: np.ndarray  # (L, D) probes of half A behind each mean
    zero_share: dict[str, float]  # share of logged steps after the first whose interval holds 0
    zero_share_range: dict[str, Interval]  # the lowest and highest share of one split
    chance_share: dict[str, float]  # what that share is when nothing systematic is left
    mean_abs: dict[str, float]  # mean |residual| over the logged steps after the first
    mean_abs_ci: dict[str, Interval]  # its interval: the same mean of each replicate's residuals
    undefined: dict[str, str]  # depth -> why it has no residual drift


def control_halves(
    items: np.ndarray, depth_code: np.ndarray, n_depths: int, seed, split: int = 0
) -> np.ndarray:
    """(P,) True for the control probes of half A: per depth, its control items permuted by
    ``default_rng((*seed, SPLIT_STREAM, split, depth index))``, the first ⌊n/2⌋ in half A.
    Items, not probes, are split, because the probes of one item move together."""
    half_a = np.zeros(len(items), dtype=bool)
    for k in range(n_depths):
        rows = depth_code == k
        ids = np.unique(items[rows])
        rng = np.random.default_rng((*seed, SPLIT_STREAM, split, k))
        half_a[rows] = np.isin(items[rows], rng.permutation(ids)[: len(ids) // 2])
    return half_a


def chance_share(n_a: int, n_b: int) -> float:
    """The share of steps whose 95 % percentile interval holds zero when the halves (``n_a``
    and ``n_b`` items) differ only by chance: the bootstrap's variance of a mean over n items
    is (n − 1)/n of the unbiased one, so the interval is the t interval (n_a + n_b − 2 degrees
    of freedom) narrowed by that factor: about 93 % for 15 items a half, 95 % for many, none
    for one."""
    nu = n_a + n_b - 2
    boot = (n_a - 1) / n_a**2 + (n_b - 1) / n_b**2
    c = 1.959964 * math.sqrt(boot / (1 / n_a + 1 / n_b))
    if c == 0:  # one item a half: every resample is that item, the interval a point
        return 0.0
    t = np.linspace(-c, c, 20_001)
    t = (t[1:] + t[:-1]) / 2  # midpoints
    log_norm = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
    density = np.exp(log_norm - (nu + 1) / 2 * np.log1p(t * t / nu))
    return float(density.sum() * 2 * c / len(t))


def _one_split(
    ell_t: np.ndarray,
    corrected: np.ndarray,
    rows: np.ndarray,
    half_a: np.ndarray,
    items: np.ndarray,
    resamples: int,
    seed: tuple,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One split's residual (L,), its replicates (B, L) (empty without resamples) and half A's
    probe counts (L,), for the depth of ``rows``; ``corrected`` is ``ell_t`` corrected by
    half B's means (every depth at once)."""
    a, b = rows & half_a, rows & ~half_a
    delta_a = corrected[a] - corrected[a][:, :1]
    delta_b = ell_t[b] - ell_t[b][:, :1]
    with warnings.catch_warnings():  # a step no probe of a half is scored at: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        residual = np.nanmean(delta_a, axis=0)
        reps = np.zeros((0, ell_t.shape[1]))
        if resamples:
            reps = mean_replicates(delta_a, items[a], resamples, (*seed, HALF_A_STREAM))
            reps_b = mean_replicates(delta_b, items[b], resamples, (*seed, HALF_B_STREAM))
            reps = reps - (reps_b - np.nanmean(delta_b, axis=0))
    return residual, reps, (~np.isnan(ell_t[a])).sum(axis=0)


def _debiased(estimate: float, replicates: np.ndarray) -> Interval:
    """The percentile interval of a mean |residual|, shifted by the bootstrap's estimate of its
    bias: a resample adds its own noise, so the replicates' mean |·| exceeds the sample's, by
    as much as the sample's exceeds the truth (on the demo, the plain interval lay wholly
    above the estimate). Clipped at 0, which no mean |·| is below."""
    if not len(replicates):
        return NO_INTERVAL
    shift = float(np.nanmean(replicates)) - estimate
    low, high = (np.asarray(percentiles(replicates)) - shift).clip(min=0.0)
    return float(low), float(high)


def residual_drift(
    ell_t: np.ndarray,
    depth_code: np.ndarray,
    items: np.ndarray,
    depths: list[str],
    resamples: int,
    seed: Sequence[int],
) -> ResidualDrift:
    """The residual drift of the control probes (rows of ``ell_t``, before any correction):
    half A less half B's mean ℓ (:func:`drift_correction`, as the analysis corrects), its Δℓ
    averaged over half A, for :data:`RESIDUAL_SPLITS` random splits. Its interval resamples
    each half's items (:func:`mean_replicates`, independent draws), since the residual is a
    difference of two means over disjoint items. The share of steps holding zero and the
    mean |residual| (each replicate's too) are averaged over the splits."""
    shape = (ell_t.shape[1], len(depths))
    out = ResidualDrift(
        np.full(shape, np.nan),
        np.full((*shape, 2), np.nan),
        np.zeros(shape, np.int64),
        {},
        {},
        {},
        {},
        {},
        {},
    )
    halves = [
        control_halves(items, depth_code, len(depths), seed, s) for s in range(RESIDUAL_SPLITS)
    ]
    # each split's correction of every depth by its half B, computed once
    corrected = [
        drift_correction(ell_t, ~half_a, depth_code, depths, True).applied(ell_t, depth_code)
        for half_a in halves
    ]
    for k, d in enumerate(depths):
        rows = depth_code == k
        n_items = len(np.unique(items[rows]))
        if 0 < n_items < 2:
            out.undefined[d] = f"{n_items} control item: 2 or more are needed to split them"
        if n_items < 2:
            continue
        shares, means, rep_means = [], [], []
        for s, half_a in enumerate(halves):
            split_seed = (*seed, s) if s else tuple(seed)  # the first split: the seed as is
            residual, reps, n = _one_split(
                ell_t, corrected[s], rows, half_a, items, resamples, split_seed
            )
            ci = percentiles(reps) if resamples else np.full((len(residual), 2), np.nan)
            if s == 0:
                out.residual[:, k], out.ci[:, k], out.n[:, k] = residual, ci, n
            defined = np.isfinite(ci[1:]).all(axis=1)
            holds = (ci[1:][defined, LOW] <= 0) & (ci[1:][defined, HIGH] >= 0)
            shares.append(holds.mean() if defined.any() else np.nan)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                means.append(np.nanmean(np.abs(residual[1:])))
                rep_means.append(np.nanmean(np.abs(reps[:, 1:]), axis=1))
        n_a = int(np.isin(np.unique(items[rows]), items[rows & halves[0]]).sum())
        out.zero_share[d] = float(np.mean(shares))
        out.zero_share_range[d] = (float(np.min(shares)), float(np.max(shares)))
        out.chance_share[d] = chance_share(n_a, n_items - n_a)
        out.mean_abs[d] = float(np.mean(means))
        out.mean_abs_ci[d] = _debiased(out.mean_abs[d], np.mean(rep_means, axis=0))
    return out
