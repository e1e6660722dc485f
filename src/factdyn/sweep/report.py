"""The report of a sweep (``factdyn reproduce``, ``factdyn report SWEEP_DIR``): the report
pages of :mod:`factdyn.report`, fed with the grid's points.

Each point of the grid is one analysis: its replicates pooled (:mod:`factdyn.analyze.pool`,
the bootstrap resampling items across them). The findings that compare runs (stage, size,
batch size, the equal-lr control) are decided across the points, the single-run findings on
the reference point; the figures add the paper's comparisons, one per axis: the mean over
scenarios of each depth's effectivity, decay constant and x-intercept in tokens against the
factor the axis varies (read from the runs' meta.json), each with its 95% interval.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from factdyn.analyze.pool import pool_runs
from factdyn.analyze.populations import analyze_run
from factdyn.analyze.result import Analysis
from factdyn.errors import DataError
from factdyn.report import figures as F
from factdyn.report.numbers import fmt
from factdyn.report.verdicts import DECAY, DEPTHS, EFF, TAU, est, mean_of
from factdyn.rundir import Run, load_run
from factdyn.sweep.grid import REFERENCE
from factdyn.sweep.sweep import SWEEP, grid_runs

CLIP = 1000.0  # τ's error bars are drawn within ×/÷ this of the estimate
METRICS = ((EFF, "effectivity"), (DECAY, "decay constant a"), (TAU, "x-intercept τ (tokens)"))
# what each axis varies, as the runs' meta.json states it (RunInfo fields)
FACTOR = {
    "stage": ("base_step", "base checkpoint's pretraining step"),
    "lr_control": ("base_step", "base checkpoint's pretraining step (equal constant lr)"),
    "size": ("n_parameters", "parameters"),
    "batch_size": ("batch_size", "batch size (sequences)"),
}


@dataclass(frozen=True)
class GridPoint:
    name: str
    axis: str
    runs: tuple[Path, ...]  # its finished replicates
    run: Run  # pooled
    analysis: Analysis


def load_points(out: Path, resamples: int | None = None) -> tuple[list[GridPoint], list[str]]:
    """Every point with a finished run, pooled and analysed, in the grid's order; and the
    runs not finished yet."""
    record, by_point = grid_runs(out)
    axis_of = {r["point"]: r["axis"] for r in record["runs"]}
    missing = [
        r["name"] for r in record["runs"] if Path(out) / "runs" / r["name"] not in
        by_point.get(r["point"], [])
    ]  # fmt: skip
    points = []
    for name, paths in by_point.items():
        run = pool_runs(paths) if len(paths) > 1 else load_run(paths[0])
        analysis = analyze_run(run, resamples=resamples)
        points.append(GridPoint(name, axis_of[name], tuple(paths), run, analysis))
    if not points:
        raise DataError(f"{out}: no finished run yet (run 'factdyn reproduce' to finish them)")
    return points, missing


def _depth_mean(a: Analysis, name: str, depth: str) -> tuple[float, float, float]:
    """Mean over scenarios of ``name`` at ``depth`` (geometric for τ) and its interval."""
    e = mean_of([est(a, s, depth, name) for s in a.scenarios()], geometric=name == TAU)
    if e is None:
        return math.nan, math.nan, math.nan
    lo, hi = e.interval()
    return e.point, lo, hi


def comparison_table(points: Sequence[GridPoint]) -> pd.DataFrame:
    """One row per point × depth: the factors from meta and each metric's mean over
    scenarios with its interval (``factdyn compare SWEEP_DIR``)."""
    rows = []
    for p in points:
        info = p.analysis.run_info
        for d in p.analysis.depths():
            row = {
                "point": p.name,
                "axis": p.axis,
                "replicates": len(p.runs),
                "base_step": info.base_step,
                "n_parameters": info.n_parameters,
                "batch_size": info.batch_size,
                "lr_first": info.lr_first,
                "depth": d,
            }
            for name, _ in METRICS:
                v, lo, hi = _depth_mean(p.analysis, name, d)
                row |= {name: v, f"{name}_ci_low": lo, f"{name}_ci_high": hi}
            rows.append(row)
    return pd.DataFrame(rows)


def axis_figure(points: Sequence[GridPoint], axis: str):
    """The metrics against the axis's factor: the reference and the axis's points (the
    lr-control axis: its points and the reference only where its lr is the same)."""
    field, label = FACTOR[axis]
    ref = [p for p in points if p.axis == REFERENCE]
    chosen = [p for p in points if p.axis == axis] + ref
    chosen = [p for p in chosen if getattr(p.analysis.run_info, field) is not None]
    if axis == "lr_control":
        lrs = {p.analysis.run_info.lr_first for p in chosen if p.axis == axis}
        chosen = [p for p in chosen if p.axis == axis or p.analysis.run_info.lr_first in lrs]
    chosen.sort(key=lambda p: getattr(p.analysis.run_info, field))
    fig, axes = F.panels(len(METRICS), width=4.2, height=3.3)
    xs = np.array([float(getattr(p.analysis.run_info, field)) for p in chosen])
    ticks = [f"{p.name}\n({fmt(x, '.3g')})" for p, x in zip(chosen, xs, strict=True)]
    for ax, (name, title) in zip(axes, METRICS, strict=True):
        drawn = False
        for d in DEPTHS:
            vals = np.array([_depth_mean(p.analysis, name, d) for p in chosen]).reshape(-1, 3)
            if not len(vals) or not np.isfinite(vals[:, 0]).any():
                continue
            lo, hi = vals[:, 1], vals[:, 2]
            if name == TAU:  # log axis: bars clipped to ×/÷ CLIP (τ's intervals reach 0 and ∞)
                lo = np.maximum(lo, vals[:, 0] / CLIP)
                hi = np.minimum(hi, vals[:, 0] * CLIP)
            err = np.abs(np.vstack([vals[:, 0] - lo, hi - vals[:, 0]]))
            err = np.where(np.isfinite(err), err, 0.0)
            ax.errorbar(xs, vals[:, 0], yerr=err, color=F.depth_color(d), marker="o",
                        capsize=3, label=d)  # fmt: skip
            drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "not finite at any point", ha="center", transform=ax.transAxes)
        elif name == TAU:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel(label)
        if len(xs) and xs.min() > 0 and xs.max() / xs.min() > 8:
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(xs, ticks, fontsize=7)
        ax.grid(alpha=0.25)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{axis.replace('_', ' ')}: mean over scenarios, 95% intervals")
    return fig


def grid_figures(points: Sequence[GridPoint], fig_dir: Path) -> list[tuple[str, Path, str]]:
    out = []
    for axis in FACTOR:
        if not any(p.axis == axis for p in points):
            continue
        png, _ = F.save(axis_figure(points, axis), fig_dir, f"grid-{axis}")
        out.append(("grid", png, f"By {axis.replace('_', ' ')}: effectivity, decay constant "
                    "and x-intercept in tokens, each depth's mean over scenarios (points: the "
                    "grid's runs, replicates pooled; bars: 95% bootstrap intervals, τ's clipped at ×/÷ "
                    f"{CLIP:g})."))  # fmt: skip
    return out


def intro(points: Sequence[GridPoint], missing: Sequence[str], source: str) -> str:
    rows = "".join(
        f"<li><b>{html.escape(p.name)}</b> ({html.escape(p.axis)}): {len(p.runs)} "
        f"replicate{'s' if len(p.runs) > 1 else ''} pooled</li>"
        for p in points
    )
    note = (
        f"<p>Not finished yet, left out: {html.escape(', '.join(missing))}.</p>" if missing else ""
    )
    return (
        f"<h2>0. The grid ({html.escape(source)})</h2><p>Each point is one analysis of its "
        "replicates pooled (the bootstrap resamples items across them). The findings between "
        "runs compare the points; the single-run findings are decided on the reference point."
        f"</p><ul>{rows}</ul>{note}"
    )


def write_grid_report(out: Path, report_dir: Path, resamples: int | None = None) -> Path:
    """The grid's report (report.html, findings.json, figures/) into ``report_dir``."""
    from factdyn.report.html import Grid, write_report

    points, missing = load_points(out, resamples)
    source = json.loads((Path(out) / SWEEP).read_text(encoding="utf-8"))["grid"]
    ref = [k for k, p in enumerate(points) if p.axis == REFERENCE] or [0]
    grid = Grid(ref, lambda d: grid_figures(points, d), intro(points, missing, source))
    return write_report(
        [p.runs[0] for p in points],
        report_dir,
        [p.analysis for p in points],
        runs=[p.run for p in points],
        labels=[p.name for p in points],
        grid=grid,
    )
