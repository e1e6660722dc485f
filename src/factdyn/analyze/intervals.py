"""The interval experiment: does a fact exposed every Δ steps accumulate? (issue 15)

For every scenario whose items are injected several times at one fixed interval Δ, and every
depth: the level ℓ keeps one interval after each exposure (``level_next`` of the acquisition
table: ℓ just before the next exposure, relative to ℓ at the first), the level right after it
(``level_peak``, at the acquisition maximum), and the slope of the kept level over exposures
(least squares over k = 1..K), each with its 95% interval from the item bootstrap.

Two thresholds per depth, measured instead of extrapolated: the largest Δ whose level is
still *retained* one interval after the K-th exposure (its interval above 0), which is what
the paper's learnability threshold τ = 10^(b/a) predicts (a gain is gone τ steps after its
exposure), and the largest Δ whose kept level still *rises* over the exposures (the slope's
interval above 0). When each exposure's gain fades on its own clock (superposed), the level
rises from exposure k to k + 1 only while (k + 1)·Δ < τ, so it rises at all only below τ/2,
and stays above 0 below τ: the two differ by design.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from factdyn.analyze.bootstrap import (
    HIGH,
    LOW,
    Interval,
    default_resamples,
    mean_replicates,
    percentiles,
)
from factdyn.analyze.result import Analysis, ordered
from factdyn.data.items import DEPTHS


@dataclass(frozen=True)
class IntervalCurve:
    """One scenario × depth of an interval run: its levels per exposure k = 1..K."""

    scenario: str
    depth: str
    interval: int  # Δ, steps between exposures
    exposures: int  # K
    kept: tuple[float, ...]  # mean ℓ one interval after exposure k, relative to before the 1st
    kept_ci: tuple[Interval, ...]
    peak: tuple[float, ...]  # mean ℓ at the acquisition maximum after exposure k
    peak_ci: tuple[Interval, ...]
    slope: float  # of the kept level per exposure
    slope_ci: Interval
    n_probes: int

    @property
    def rises(self) -> bool:
        """The kept level rises with exposures: the slope's interval lies above 0."""
        return bool(self.slope_ci[LOW] > 0)

    @property
    def retained(self) -> bool:
        """Something is kept one interval after the last exposure: its interval above 0."""
        return bool(self.kept_ci[-1][LOW] > 0)


def _slopes(levels: np.ndarray) -> np.ndarray:
    """Least-squares slope over k = 1..K of each row of ``levels`` (R, K), NaN-aware."""
    k = np.arange(1, levels.shape[1] + 1, dtype=float)
    ok = np.isfinite(levels)
    n = ok.sum(axis=1)
    kk = np.where(ok, k, 0.0)
    yy = np.where(ok, levels, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        k_mean = kk.sum(axis=1) / n
        y_mean = yy.sum(axis=1) / n
        dk = np.where(ok, k - k_mean[:, None], 0.0)
        dy = np.where(ok, levels - y_mean[:, None], 0.0)
        slope = (dk * dy).sum(axis=1) / (dk**2).sum(axis=1)
    return np.where(n >= 2, slope, np.nan)


def _regular_interval(rows: pd.DataFrame) -> int | None:
    """Δ when every item of the scenario is injected ≥ 2 times at one fixed interval."""
    steps = rows[["item", "injection", "step"]].drop_duplicates().sort_values(["item", "injection"])
    gaps = steps.groupby("item")["step"].diff().dropna()
    if gaps.empty or gaps.nunique() != 1:
        return None
    return int(gaps.iloc[0])


def _table(rows: pd.DataFrame, column: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(P, K) of ``column`` per probe × exposure, and the item of each probe."""
    wide = rows.pivot(index="probe_id", columns="injection", values=column)
    wide = wide.reindex(columns=range(1, k + 1))
    items = rows.drop_duplicates("probe_id").set_index("probe_id")["item"].reindex(wide.index)
    return wide.to_numpy(dtype=float), items.to_numpy()


def _mean_and_intervals(
    values, items, resamples, seed
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over probes per column, the (B, K) bootstrap replicates and (K, 2) intervals."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column with no logged value
        mean = np.nanmean(values, axis=0)
    if not resamples:
        return mean, np.full((0, values.shape[1]), np.nan), np.full((values.shape[1], 2), np.nan)
    reps = mean_replicates(values, items, resamples, seed)
    return mean, reps, percentiles(reps)


def interval_curves(
    analysis: Analysis, resamples: int | None = None, seed: int = 0, per_run: int | None = None
) -> list[IntervalCurve]:
    """Every repeated scenario × depth of ``analysis`` with one fixed interval. ``per_run``:
    the items of each pooled run (meta's ``pooled_items``), whose copies resample together."""
    resamples = default_resamples() if resamples is None else resamples
    acq = analysis.acquisition
    out = []
    for s_index, scenario in enumerate(ordered(acq["scenario"].astype(str).tolist())):
        of_s = acq[acq["scenario"].astype(str) == scenario]
        delta = _regular_interval(of_s)
        if delta is None:
            continue
        k = int(of_s["injection"].max())
        for depth in ordered(of_s["depth"].astype(str).tolist(), DEPTHS):
            rows = of_s[of_s["depth"].astype(str) == depth]
            kept, items = _table(rows, "level_next", k)
            items = items % per_run if per_run else items
            peak, _ = _table(rows, "level_peak", k)
            draw = (seed, s_index)  # the depths of a scenario share their draws
            kept_m, kept_r, kept_ci = _mean_and_intervals(kept, items, resamples, draw)
            peak_m, _, peak_ci = _mean_and_intervals(peak, items, resamples, draw)
            slope = float(_slopes(kept_m[None, :])[0])
            lo, hi = percentiles(_slopes(kept_r)) if resamples else (np.nan, np.nan)
            out.append(
                IntervalCurve(
                    scenario, depth, delta, k,
                    tuple(map(float, kept_m)), tuple(map(tuple, kept_ci.tolist())),
                    tuple(map(float, peak_m)), tuple(map(tuple, peak_ci.tolist())),
                    slope, (float(lo), float(hi)), len(kept),
                )
            )  # fmt: skip
    return out


@dataclass(frozen=True)
class Thresholds:
    """Per depth, the largest tested Δ with the property (None: no Δ has it)."""

    retained: dict[str, int | None]
    rises: dict[str, int | None]


def measured_thresholds(curves: list[IntervalCurve]) -> Thresholds:
    def largest(has) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for c in curves:
            out.setdefault(c.depth, None)
            if has(c) and (out[c.depth] is None or c.interval > out[c.depth]):
                out[c.depth] = c.interval
        return out

    return Thresholds(retained=largest(lambda c: c.retained), rises=largest(lambda c: c.rises))


def intervals_table(curves: list[IntervalCurve]) -> pd.DataFrame:
    """One row per scenario × depth × exposure (``intervals.csv``)."""
    rows = [
        {
            "scenario": c.scenario,
            "depth": c.depth,
            "interval": c.interval,
            "exposure": k + 1,
            "kept": c.kept[k],
            "kept_ci_low": c.kept_ci[k][LOW],
            "kept_ci_high": c.kept_ci[k][HIGH],
            "peak": c.peak[k],
            "peak_ci_low": c.peak_ci[k][LOW],
            "peak_ci_high": c.peak_ci[k][HIGH],
            "slope": c.slope,
            "slope_ci_low": c.slope_ci[LOW],
            "slope_ci_high": c.slope_ci[HIGH],
            "rises": c.rises,
            "retained": c.retained,
            "n_probes": c.n_probes,
        }
        for c in curves
        for k in range(c.exposures)
    ]
    return pd.DataFrame(rows)
