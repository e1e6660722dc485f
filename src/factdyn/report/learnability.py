"""The learnability threshold, predicted against measured (an interval run's report section).

Measured: the interval experiment's kept level after K exposures at each interval Δ, with
its interval (:mod:`factdyn.analyze.intervals`). Predicted: the simulator
(:mod:`factdyn.analyze.simulate`) fed with the same run's single-exposure items (the ``once``
scenario, else the first scenario with a fit): their effectivity and power-law forgetting,
superposed over K exposures, with a 95% band from the bootstrap replicates of those inputs
(each replicate's a, b and E_k together). A prediction outside the measured interval is
reported as such: a model that does not fit is a finding too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from factdyn.analyze.bootstrap import HIGH, LOW, NO_INTERVAL, Interval, percentiles
from factdyn.analyze.intervals import IntervalCurve, measured_thresholds
from factdyn.analyze.result import Analysis
from factdyn.analyze.simulate import (
    ModelParams,
    final_levels,
    kept_levels,
    params_of,
    predicted_threshold,
    replicates_of,
)
from factdyn.errors import DataError
from factdyn.report import figures as F
from factdyn.report.numbers import fmt, fmt_estimate

SOURCE = "once"  # the scenario whose single exposures the simulator is fed with


@dataclass(frozen=True)
class Comparison:
    """One depth: each Δ's measured kept level after K exposures against the prediction."""

    depth: str
    source: str  # the scenario the simulator was fed with
    intervals: tuple[int, ...]
    measured: tuple[float, ...]
    measured_ci: tuple[Interval, ...]
    predicted: tuple[float, ...]  # NaN: no fit to predict from
    tau: float  # predicted threshold (steps)
    tau_ci: Interval  # the analysis's interval of τ (steps) of the population fed to the simulator
    params: ModelParams | None
    replicates: tuple[ModelParams, ...]  # params of each bootstrap replicate with a usable fit
    why_not: str  # why there is no prediction ('' when there is)

    @property
    def inside(self) -> tuple[bool, ...]:
        return tuple(
            lo <= p <= hi for p, (lo, hi) in zip(self.predicted, self.measured_ci, strict=True)
        )


def curves_by_depth(a: Analysis) -> dict[str, list[IntervalCurve]]:
    """The interval curves of a run that varies Δ (≥ 2 intervals), by depth, Δ increasing."""
    if len({c.interval for c in a.intervals}) < 2:
        return {}
    out: dict[str, list[IntervalCurve]] = {}
    for c in sorted(a.intervals, key=lambda c: c.interval):
        out.setdefault(c.depth, []).append(c)
    return out


def compare(a: Analysis) -> list[Comparison]:
    """Per depth of an interval run: measured against predicted kept levels."""
    source = SOURCE if SOURCE in a.scenarios() else next(iter(a.scenarios()), "")
    out = []
    for depth, curves in curves_by_depth(a).items():
        k = curves[0].exposures
        params, why = None, ""
        pop = a.get(source, depth)
        try:
            params = params_of(a, pop) if pop is not None else None
            why = "" if pop is not None else f"no {source}/{depth} population"
        except DataError as e:
            why = str(e)
        predicted = tuple(
            float(kept_levels(params, c.interval, k)[-1]) if params else math.nan for c in curves
        )
        replicates = tuple(replicates_of(a, pop, params)[0]) if params else ()
        tau_ci = pop.x_intercept_steps_ci if pop is not None else NO_INTERVAL
        out.append(
            Comparison(
                depth, source, tuple(c.interval for c in curves),
                tuple(c.kept[-1] for c in curves), tuple(c.kept_ci[-1] for c in curves),
                predicted, predicted_threshold(params) if params else math.nan, tau_ci,
                params, replicates, why,
            )
        )  # fmt: skip
    return out


def figure(a: Analysis, title: str | None = None):
    """Kept level after K exposures against Δ per depth: measured (points, 95% intervals)
    and predicted (line, its 95% band over the bootstrap replicates), with the predicted τ and
    the measured thresholds."""
    found = compare(a)
    fig, axes = F.panels(max(len(found), 1), width=4.2, height=3.4)
    if not found:
        return F._empty(fig, axes[0], "no interval experiment in this run")
    retained = measured_thresholds(list(a.intervals)).retained
    for ax, c in zip(axes, found, strict=False):
        x = np.array(c.intervals, dtype=float)
        measured_ci = np.array(c.measured_ci)
        lo, hi = measured_ci[:, LOW], measured_ci[:, HIGH]
        y = np.array(c.measured)
        err = np.nan_to_num(np.abs(np.vstack([y - lo, hi - y])))
        color = F.depth_color(c.depth)
        ax.errorbar(x, y, yerr=err, fmt="o", color=color, capsize=3, label="measured")
        if c.params is not None:
            grid = np.geomspace(x.min() / 1.5, x.max() * 1.5, 200)
            k = len(a.intervals[0].kept)
            curves = final_levels([c.params, *c.replicates], np.full(len(grid), k), grid)
            ax.plot(grid, curves[0], color="black", lw=1, label=f"simulated from '{c.source}'")
            if c.replicates:
                band = percentiles(curves[1:])
                ax.fill_between(grid, band[:, LOW], band[:, HIGH], color="black", alpha=0.12,
                                lw=0, label="simulated, 95% band")  # fmt: skip
            if math.isfinite(c.tau):
                ax.axvline(c.tau, color="black", ls="--", lw=0.8, label=f"τ predicted {fmt(c.tau)}")
        if retained.get(c.depth):
            ax.axvline(retained[c.depth], color=color, ls=":", lw=1.2,
                       label=f"retained up to Δ = {retained[c.depth]}")  # fmt: skip
        ax.axhline(0.0, color="grey", lw=0.6)
        ax.set_xscale("log")
        ax.set_xticks(x, [str(int(v)) for v in x])
        ax.minorticks_off()
        ax.set_xlabel("interval Δ between exposures (steps)")
        ax.set_title(c.depth)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.25)
    axes[0].set_ylabel("kept Δℓ after the last exposure")
    if title:
        fig.suptitle(title)
    return fig


def rows(a: Analysis) -> list[tuple[str, ...]]:
    """The table's rows: per depth, the thresholds and where the prediction fails."""
    found = compare(a)
    th = measured_thresholds(list(a.intervals))
    out = []
    for c in found:
        if c.params is None:
            verdict = f"no prediction: {c.why_not}"
        else:
            misses = [str(d) for d, ok in zip(c.intervals, c.inside, strict=True) if not ok]
            verdict = f"{sum(c.inside)} of {len(c.inside)} Δ inside" + (
                f" (outside at Δ = {', '.join(misses)})" if misses else ""
            )
        out.append((
            c.depth, str(th.retained.get(c.depth) or "none"), str(th.rises.get(c.depth) or "none"),
            fmt_estimate(c.tau, c.tau_ci) if c.params else fmt(c.tau), verdict,
        ))  # fmt: skip
    return out
