"""Two estimators of the retainability curve R̄(t) beside the paper's, reported next to it and
never instead of it (every finding, figure and target uses the paper's).

The paper's R̄(t) is the IQR-filtered mean of per-probe ratios R(q, t) = (ℓ(t_LAM + t) − ℓ_pre)
÷ g_q with g_q = ℓ(t_LAM) − ℓ_pre > 0. A probe whose gain g_q is barely above its own noise has
a ratio that swings by several units when ℓ wanders by a fraction of a nat, and a handful of
such probes can drag the mean far from the bulk. Two ways around that, on the same probes and
the same t:

- ``gain_floor``: the paper's estimator over the probes whose gain exceeds
  :data:`GAIN_FLOOR` × the depth's noise floor (the median one-step |Δℓ| of the control probes);
  undefined without controls;
- ``ratio_of_means``: Σ_q (ℓ(t_LAM + t) − ℓ_pre) ÷ Σ_q g_q over the probes with an R at t, a
  ratio of mean numerator to mean gain (no division by any single small gain; no IQR filter).

Each is fitted as the paper's curve is (R̄ = b − a·log10 t, t ≥ 1, the same weights), and gets
the same item-bootstrap interval: the estimate is the fit on the sample itself, the intervals
come from the population's resamples of items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from factdyn.analyze.bootstrap import (
    NO_INTERVAL,
    filtered_means,
    fit_many,
    interval_of,
    probe_counts,
)
from factdyn.analyze.fit import probe_step_weights
from factdyn.analyze.result import AlternativeFit, Population

GAIN_FLOOR = 3.0  # a probe's gain must exceed this many noise floors (gain_floor)
ESTIMATORS = ("gain_floor", "ratio_of_means")


def alternative_fits(
    items: np.ndarray,
    gain: np.ndarray,
    t: np.ndarray,
    r: np.ndarray,
    noise: float,
    iqr: float,
    every_step: bool,
    resamples: int,
    seed: int | Sequence[int],
) -> dict[str, AlternativeFit]:
    """Both alternative fits of one population: ``items`` (P,) each probe's item, ``gain`` (P,)
    its retainability denominator g_q in nats, ``t`` (U,) and ``r`` (U, P) as the paper's
    curve has them (NaN: no R; in the unit R̄ is reported in), ``noise`` the depth's noise
    floor (NaN: no controls), ``iqr`` the paper's filter factor; resampled as
    :func:`factdyn.analyze.bootstrap.bootstrap_population` resamples."""
    t = np.asarray(t, dtype=np.float64)
    gain = np.asarray(gain, dtype=np.float64)
    floored = np.where(gain > GAIN_FLOOR * noise, 0.0, np.nan) if noise > 0 else np.nan
    r_floor = r + floored  # NaN for the probes under the floor (all of them without controls)
    valid = ~np.isnan(r)
    numerator = np.where(valid, r * gain, 0.0).T  # (P, U)
    denominator = np.where(valid, gain, 0.0).T

    def ratio_of_means(counts: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (counts @ numerator) / (counts @ denominator)

    curves: dict[str, tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]] = {
        "gain_floor": (r_floor, lambda counts: filtered_means(r_floor, counts, iqr)),
        "ratio_of_means": (r, ratio_of_means),
    }
    draws = probe_counts(items, resamples, seed) if resamples and len(items) else None
    out = {}
    for name, (r_used, curve) in curves.items():
        seen = ~np.isnan(r_used)
        per_probe = np.ones(r_used.shape) if every_step else probe_step_weights(t, seen)
        per_probe = np.where(seen, per_probe, 0.0).T  # (P, U)

        def fit(counts: np.ndarray, _curve=curve, _w=per_probe):
            return fit_many(t, _curve(counts), counts @ _w)

        # the estimate: the fit on the sample itself, a batch of one resample of every item
        a, b, r2 = (float(v[0]) for v in fit(np.ones((1, len(items)), dtype=np.int32)))
        a_ci, b_ci, r2_ci = (
            (NO_INTERVAL,) * 3 if draws is None else (interval_of(v) for v in fit(draws))
        )
        n = int(seen.any(axis=0).sum()) if seen.size else 0
        out[name] = AlternativeFit(a, a_ci, b, b_ci, r2, r2_ci, n)
    return out


def estimators_table(populations: Sequence[Population]) -> pd.DataFrame:
    """``estimators.csv``: per population, the paper's fit and each alternative's, one row
    each (estimator ``paper``, ``gain_floor``, ``ratio_of_means``) with their intervals."""
    rows = []
    for p in populations:
        fits = {"paper": AlternativeFit(p.decay_constant, p.decay_constant_ci, p.intercept,
                                        p.intercept_ci, p.r2, p.r2_ci,
                                        p.n_probes - p.n_excluded)}  # fmt: skip
        for name, f in (fits | dict(p.alternatives)).items():
            rows.append((p.scenario, p.depth, name, f.decay_constant, *f.decay_constant_ci,
                         f.intercept, *f.intercept_ci, f.r2, *f.r2_ci, f.n_probes))  # fmt: skip
    columns = ["scenario", "depth", "estimator", "decay_constant", "decay_constant_ci_low",
               "decay_constant_ci_high", "intercept", "intercept_ci_low", "intercept_ci_high",
               "r2", "r2_ci_low", "r2_ci_high", "n_probes"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
