"""The forgetting fit (SPEC §5.5): R̄(t) = b − a·log10(t) by least squares, for t ≥ 1."""

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


def fit_power_law(t: np.ndarray, r: np.ndarray) -> PowerLawFit:
    """Ordinary least squares of ``r`` on log10(t) over the finite points with t ≥ 1.

    Needs two distinct t for a line (else all NaN) and three for the standard error of ``a``.
    """
    t = np.asarray(t, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    use = (t >= 1) & np.isfinite(r)
    x = np.log10(t[use])
    y = r[use]
    n = len(x)
    nan = math.nan
    if n < 2 or np.ptp(x) == 0:
        return PowerLawFit(nan, nan, nan, nan, nan, n)
    xm, ym = x.mean(), y.mean()
    sxx = float(((x - xm) ** 2).sum())
    slope = float(((x - xm) * (y - ym)).sum()) / sxx
    a = -slope
    b = float(ym - slope * xm)
    resid = y - (b - a * x)
    sse = float((resid**2).sum())
    sst = float(((y - ym) ** 2).sum())
    r2 = 1.0 - sse / sst if sst > 0 else nan
    se_a = math.sqrt(sse / (n - 2) / sxx) if n > 2 else nan
    return PowerLawFit(a, b, r2, se_a, x_intercept(a, b), n)
