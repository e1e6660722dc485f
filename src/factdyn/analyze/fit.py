"""The forgetting fit (docs/method.md): R̄(t) = b − a·log10(t) by least squares, for t ≥ 1."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class PowerLawFit(NamedTuple):
    """Decay constant ``a``, intercept ``b``, R², standard error of ``a``, x-intercept τ."""

    a: float
    b: float
    r2: float
    se_a: float
    x_intercept_steps: float
    n_points: int


def x_intercept(a: float, b: float) -> float:
    """τ = 10^(b/a): the t where the fitted line reaches R = 0.

    With no decay (a ≤ 0) a positive line never reaches 0: τ = inf; otherwise (or with a NaN
    parameter) it is undefined: NaN. Overflow (tiny a) gives inf.
    """
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.nan
    if a <= 0:
        return math.inf if b > 0 else math.nan
    e = b / a
    return math.inf if e > 308 else 10.0**e


def step_weights(t: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Per interval t (U,), how many (integer interval, probe) pairs its observations stand
    for: the sum over probes of :func:`probe_step_weights`."""
    return probe_step_weights(t, observed).sum(axis=1)


def probe_step_weights(t: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(U, P) how many integer intervals each probe's observation at t stands for (0 where
    it has none): each probe's observation at t covers the steps from the midpoint with that probe's
    previous observed t to the midpoint with its next; a probe's first and last observations
    reach to the ends of the range, t[0] − ½ and t[-1] + ½.

    ``observed`` (U, P) says which probe has a value at which t. With every t observed by
    every probe the weights are all P, and the weighted fit is ordinary least squares. On a
    sparse log the weighted least squares is a quadrature of the every-step sum, so it
    estimates the fit every step would give, not one dominated by the densely logged
    windows; probes whose t_LAM differ are logged at shifted t, and spreading the weight
    per probe keeps one thinly populated t from standing for a whole gap.
    """
    t = np.asarray(t, dtype=np.float64)
    seen = np.asarray(observed, dtype=bool)
    n = len(t)
    if n == 0:
        return np.zeros(seen.shape)
    pos = np.arange(n)[:, None]
    last_seen = np.maximum.accumulate(np.where(seen, pos, -1), axis=0)
    next_seen = np.minimum.accumulate(np.where(seen, pos, n)[::-1], axis=0)[::-1]
    before = np.vstack([np.full((1, seen.shape[1]), -1), last_seen[:-1]])  # strictly before
    after = np.vstack([next_seen[1:], np.full((1, seen.shape[1]), n)])  # strictly after
    # a probe's first and last observations reach out to the ends of the whole range
    lo = np.where(before >= 0, t[np.maximum(before, 0)], 2 * t[0] - 1 - t[:, None])
    hi = np.where(after < n, t[np.minimum(after, n - 1)], 2 * t[-1] + 1 - t[:, None])
    return np.where(seen, (hi - lo) / 2, 0.0)


def fit_power_law(t: np.ndarray, r: np.ndarray, weights: np.ndarray | None = None) -> PowerLawFit:
    """(Weighted) least squares of ``r`` on log10(t) over the finite points with t ≥ 1.

    ``weights`` default to 1 (ordinary least squares, the paper's fit). The standard error
    of ``a`` assumes equal noise at every point (with unequal weights it is the sandwich
    form, which reduces to the usual σ²/Sxx for equal ones). Needs two distinct t for a
    line (else all NaN) and three for the standard error.
    """
    t = np.asarray(t, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=np.float64)
    use = (t >= 1) & np.isfinite(r) & (w > 0)
    x = np.log10(t[use])
    y = r[use]
    w = w[use]
    n = len(x)
    nan = math.nan
    if n < 2 or np.ptp(x) == 0:
        return PowerLawFit(nan, nan, nan, nan, nan, n)
    total = float(w.sum())
    xm, ym = float(w @ x) / total, float(w @ y) / total
    dx = x - xm
    sxx = float(w @ dx**2)
    slope = float(w @ (dx * (y - ym))) / sxx
    a = -slope
    b = ym - slope * xm
    resid = y - (b - a * x)
    sse = float(w @ resid**2)
    sst = float(w @ (y - ym) ** 2)
    r2 = 1.0 - sse / sst if sst > 0 else nan
    sigma2 = sse / total * n / (n - 2) if n > 2 else nan  # the noise of one point
    se_a = math.sqrt(sigma2 * float(w**2 @ dx**2)) / sxx if n > 2 else nan
    return PowerLawFit(a, b, r2, se_a, x_intercept(a, b), n)
