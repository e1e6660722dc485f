"""What the control probes say: the drift every probe undergoes, and how far one moves by chance.

Control probes ask about facts never injected, so their ℓ moves only with the background
training. Their mean per depth is the drift subtracted from every probe of that depth
(docs/method.md); the median one-step move of a control probe is the depth's noise floor, the
yardstick of a signal-to-noise ratio.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from factdyn.analyze.bootstrap import Interval, mean_replicates, median_interval, percentiles
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
