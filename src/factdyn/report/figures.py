"""The paper's figures from :class:`~factdyn.analyze.result.Analysis` objects.

Every function returns a :class:`matplotlib.figure.Figure` drawn on an Agg canvas; no pyplot
state is touched, so figures can be made in a loop, from threads or under a GUI backend
without leaking windows. :func:`save` writes a figure as PNG and PDF.

- :func:`trajectory_figure`: mean Δℓ over steps per depth, injections marked (paper Fig. 2);
- :func:`effectivity_figure`: effectivity by depth × scenario, runs side by side (Fig. 3);
- :func:`retainability_figure`: R̄(t) on a log axis with the fitted power law (Fig. 4);
- :func:`retainability_tokens_figure`: the same fits over tokens for several runs (Fig. 5).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import LogFormatter, ScalarFormatter

from factdyn.analyze.result import Analysis, Population
from factdyn.files import atomic_file
from factdyn.report.numbers import fmt, fmt_interval, run_labels

DPI = 110
DEPTH_COLORS = {"memorization": "#1b6ca8", "semantic": "#e07b00", "composition": "#2a9d3c"}
_EXTRA_COLORS = ("#b5179e", "#7a5195", "#8c564b", "#17becf")
CONTROL_COLOR = "#8c8c8c"
RUN_STYLES = ("-", "--", ":", "-.")
RUN_MARKERS = ("o", "s", "^", "D", "v", "P")


def depth_color(depth: str) -> str:
    """One colour per depth, the same in every figure."""
    if depth in DEPTH_COLORS:
        return DEPTH_COLORS[depth]
    return _EXTRA_COLORS[sum(map(ord, depth)) % len(_EXTRA_COLORS)]


def panels(n_panels: int, width: float = 4.6, height: float = 3.6) -> tuple[Figure, list]:
    """A figure of ``n_panels`` panels side by side (at least one), each ``width`` wide."""
    fig = Figure(figsize=(max(width * n_panels, 5.0), height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(n_panels, 1), squeeze=False)[0]
    return fig, list(axes)


def _empty(fig: Figure, ax, text: str) -> Figure:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def injection_steps(
    analysis: Analysis, injections: pd.DataFrame | None = None
) -> dict[str, list[int]]:
    """Distinct injection steps per scenario, from a run's ``injections`` table when given,
    else from the analysis's acquisition table; with cohorts aligned, those of the first
    cohort (the steps every aligned trajectory shares)."""
    if injections is not None and len(injections):
        table = injections[["scenario", "item", "step"]]
    else:
        table = analysis.acquisition[["scenario", "item", "step"]]
        table = table[table["step"] >= 0]
    if analysis.settings.cohorts_aligned:
        starts = table.groupby("item")["step"].transform("min")
        first = table.groupby(table["scenario"].astype(str), observed=True)["step"].transform("min")
        table = table[starts == first]
    out: dict[str, list[int]] = {}
    for s, steps in table.groupby(table["scenario"].astype(str), observed=True)["step"]:
        out[str(s)] = sorted(int(x) for x in steps.unique())
    return out


def _x_label(analysis: Analysis, x: str) -> str:
    label = "tokens" if x == "tokens" else "step"
    return label + (" (cohorts aligned to the first)" if analysis.settings.cohorts_aligned else "")


def _injection_lines(ax, steps: Sequence[int], scale: float) -> None:
    """The injection steps as dotted vertical lines (one legend entry)."""
    for k, t in enumerate(steps):
        ax.axvline(
            t * scale,
            color="black",
            lw=0.7,
            ls=":",
            alpha=0.6,
            zorder=0,
            label="injection" if k == 0 else None,
        )


def greedy_figure(
    analysis: Analysis,
    injections: pd.DataFrame | None = None,
    title: str | None = None,
    x: str = "step",
) -> Figure:
    """Per scenario, the share of probes whose target is the greedy continuation (the model
    produces the fact), one line per depth, injection steps dotted: the ``greedy`` table."""
    scen = analysis.scenarios()
    fig, axes = panels(len(scen), width=5.0)
    table = analysis.greedy
    if not scen or table.empty:
        return _empty(fig, axes[0], "no greedy statistic in this run")
    table_s = table["scenario"].astype(str)
    inj = injection_steps(analysis, injections)
    scale = analysis.settings.tokens_per_step if x == "tokens" else 1
    for ax, s in zip(axes, scen, strict=False):
        _injection_lines(ax, inj.get(s, []), scale)
        for d in analysis.depths():
            part = table[(table_s == s) & (table["depth"].astype(str) == d)]
            if len(part):
                ax.plot(part[x], part["share"], color=depth_color(d), lw=1.4, label=d)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(s)
        ax.set_xlabel(_x_label(analysis, x))
        ax.grid(alpha=0.25)
    axes[0].set_ylabel("share of probes whose target is the greedy continuation")
    axes[0].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return fig


def trajectory_figure(
    analysis: Analysis,
    injections: pd.DataFrame | None = None,
    title: str | None = None,
    x: str = "step",
) -> Figure:
    """Per scenario, the mean Δℓ = ℓ_t − ℓ_0 of each depth over steps (or ``x="tokens"``)
    with its bootstrap interval as a band, the injection steps as dotted vertical lines and
    the control probes' drift in grey (dashed: the residual drift the correction leaves)."""
    scen = analysis.scenarios()
    fig, axes = panels(len(scen), width=5.0)
    if not scen:
        return _empty(fig, axes[0], "no injected probes in this run")
    traj = analysis.trajectories
    traj_s = traj["scenario"].astype(str)
    inj = injection_steps(analysis, injections)
    scale = analysis.settings.tokens_per_step if x == "tokens" else 1
    drift = analysis.control_drift
    corrected = analysis.settings.drift_corrected
    for ax, s in zip(axes, scen, strict=False):
        _injection_lines(ax, inj.get(s, []), scale)
        for d in analysis.depths():
            part = traj[(traj_s == s) & (traj["depth"].astype(str) == d)]
            if len(part):
                color = depth_color(d)
                ax.fill_between(
                    part[x], part["ci_low"], part["ci_high"], color=color, alpha=0.15, lw=0
                )
                ax.plot(part[x], part["delta"], color=color, lw=1.4, label=d)
        label = "control drift" + (" (subtracted)" if corrected else "")
        for table, col, name, style in (
            (drift, "delta", label, "-"),
            (analysis.residual_drift, "residual", "residual drift (half the controls)", "--"),
        ):
            if len(table):  # the mean over depths
                mean = table.groupby(x, sort=True)[col].mean()
                ax.plot(
                    mean.index, mean.to_numpy(), color=CONTROL_COLOR, lw=1.1, ls=style, label=name
                )
        ax.axhline(0.0, color="black", lw=0.5, alpha=0.4)
        ax.set_title(s)
        ax.set_xlabel(_x_label(analysis, x))
        ax.grid(alpha=0.25)
    ylabel = "mean Δℓ = ℓ_t − ℓ_0" + (" (drift-corrected)" if corrected else "")
    axes[0].set_ylabel(ylabel)
    axes[0].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return fig


def effectivity_figure(analyses: Sequence[Analysis], labels: Sequence[str] | None = None) -> Figure:
    """Mean effectivity per scenario (groups) × depth (bars) with its bootstrap interval;
    one panel per run, shared y."""
    labels = run_labels(len(analyses), labels)
    fig, axes = panels(len(analyses), width=4.4)
    if not analyses:
        return _empty(fig, axes[0], "no runs")
    lo, hi = 0.0, 0.0
    for ax, a, label in zip(axes, analyses, labels, strict=False):
        scen, depths = a.scenarios(), a.depths()
        if not scen:
            _empty(fig, ax, "no injected probes")
            continue
        width = 0.8 / max(len(depths), 1)
        xs = np.arange(len(scen))
        for j, d in enumerate(depths):
            pops = [a.get(s, d) for s in scen]
            vals = [p.effectivity if p else math.nan for p in pops]
            errs = np.array([_error_bar(p) for p in pops]).T  # (2, scenarios)
            pos = xs - 0.4 + width * (j + 0.5)
            ax.bar(pos, vals, width, color=depth_color(d), label=d, yerr=errs, capsize=2)
            finite = [v for v in vals if math.isfinite(v)]
            lo, hi = min([lo, *finite]), max([hi, *finite])
        ax.set_xticks(xs, scen)
        ax.axhline(0.0, color="black", lw=0.6)
        ax.set_title(label)
        ax.grid(axis="y", alpha=0.25)
    for ax in axes:
        if ax.axison and hi > lo:
            ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.15 * (hi - lo))
    axes[0].set_ylabel("effectivity (mean over injections)")
    axes[0].legend(fontsize=8)
    return fig


def _error_bar(p: Population | None) -> tuple[float, float]:
    """(below, above) the effectivity to the bounds of its interval (0 where undefined)."""
    if p is None:
        return 0.0, 0.0
    lo, hi = p.effectivity_ci
    below, above = p.effectivity - lo, hi - p.effectivity
    return (below if math.isfinite(below) else 0.0), (above if math.isfinite(above) else 0.0)


def _fit_label(p: Population, tokens: bool = False) -> str:
    ci = fmt_interval(p.decay_constant_ci, ".2g")
    text = f"a = {fmt(p.decay_constant)} {ci}, R² = {fmt(p.r2, '.2f')}"
    if tokens:
        text += f", τ = {fmt(p.x_intercept_tokens)} tok"
    return text


def _fit_line(p: Population, t_max: float) -> tuple[np.ndarray, np.ndarray] | None:
    a, b = p.decay_constant, p.intercept
    if not (math.isfinite(a) and math.isfinite(b)) or t_max < 1:
        return None
    t = np.logspace(0, math.log10(max(t_max, 1.0)), 100)
    return t, b - a * np.log10(t)


def _ret_label(analysis: Analysis) -> str:
    percent = analysis.settings.retainability_unit == "percent"
    return "mean retainability R̄(t)" + (" (%)" if percent else "")


NO_RETAINABILITY = (
    "no retainability to draw:\nno probe of this scenario has a logged step\n"
    "after its last acquisition maximum (a longer run has)"
)


def _retainability_axis(ax, title: str, xlabel: str, legend_size: int) -> None:
    """A log t axis, or, when nothing at t ≥ 1 was drawn on it, the reason in words (a log
    axis of no positive values cannot be drawn)."""
    if not any(len(line.get_xdata()) for line in ax.get_lines()):
        ax.set_title(title)
        ax.text(0.5, 0.5, NO_RETAINABILITY, ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    ax.set_xscale("log")
    ax.axhline(0.0, color="black", lw=0.5, alpha=0.4)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.25, which="both")
    ax.legend(fontsize=legend_size, loc="lower left")


def _fitted_points(analysis: Analysis, scenario: str) -> Iterator[tuple[Population, pd.DataFrame]]:
    """(population, its R̄(t) rows with t ≥ 1) for each depth of ``scenario``."""
    ret = analysis.retainability
    ret_s, ret_d = ret["scenario"].astype(str), ret["depth"].astype(str)
    for p in analysis.populations:
        if p.scenario == scenario:
            yield p, ret[(ret_s == scenario) & (ret_d == p.depth) & (ret["t"] >= 1)]


def retainability_figure(analysis: Analysis, title: str | None = None) -> Figure:
    """Per scenario, R̄(t) for t ≥ 1 on a log axis, its bootstrap interval as a band, and the
    fitted R̄ = b − a·log10 t per depth; the decay constant a (with its interval) and R² in
    the legend."""
    scen = analysis.scenarios()
    fig, axes = panels(len(scen), width=4.8)
    if not scen:
        return _empty(fig, axes[0], "no injected probes in this run")
    for ax, s in zip(axes, scen, strict=False):
        for p, pts in _fitted_points(analysis, s):
            color = depth_color(p.depth)
            if len(pts):
                ax.plot(pts["t"], pts["retainability"], ".", ms=3, color=color, alpha=0.45)
                band = (pts["t"], pts["ci_low"], pts["ci_high"])
                ax.fill_between(*band, color=color, alpha=0.15, lw=0)
            line = _fit_line(p, float(pts["t"].max()) if len(pts) else 0.0)
            if line is not None:
                ax.plot(*line, color=color, lw=1.6, label=f"{p.depth}: {_fit_label(p)}")
            else:
                ax.plot([], [], color=color, label=f"{p.depth}: no fit")
        _retainability_axis(ax, s, "t (steps after the last acquisition maximum)", 7)
    axes[0].set_ylabel(_ret_label(analysis))
    if title:
        fig.suptitle(title)
    return fig


def retainability_tokens_figure(
    analyses: Sequence[Analysis], labels: Sequence[str] | None = None
) -> Figure:
    """Several runs' fitted forgetting curves over tokens (t × tokens_per_step), per scenario
    (paper Fig. 5): colour = depth, line style = run; τ in tokens in the legend."""
    labels = run_labels(len(analyses), labels)
    scen = list(dict.fromkeys(s for a in analyses for s in a.scenarios()))
    fig, axes = panels(len(scen), width=5.2, height=4.2)
    if not scen:
        return _empty(fig, axes[0], "no injected probes")
    for ax, s in zip(axes, scen, strict=False):
        for k, (a, label) in enumerate(zip(analyses, labels, strict=True)):
            tps = a.settings.tokens_per_step
            style, marker = RUN_STYLES[k % len(RUN_STYLES)], RUN_MARKERS[k % len(RUN_MARKERS)]
            for p, pts in _fitted_points(a, s):
                color = depth_color(p.depth)
                if len(pts):
                    t, r = pts["t"] * tps, pts["retainability"]
                    ax.plot(t, r, marker, ms=2, color=color, alpha=0.3)
                line = _fit_line(p, float(pts["t"].max()) if len(pts) else 0.0)
                if line is not None:
                    t, r = line
                    ax.plot(
                        t * tps,
                        r,
                        style,
                        color=color,
                        lw=1.5,
                        label=f"{label} · {p.depth}: {_fit_label(p, tokens=True)}",
                    )
        _retainability_axis(ax, s, "tokens after the last acquisition maximum", 6)
    axes[0].set_ylabel(_ret_label(analyses[0]))
    return fig


def as_written(fig: Figure) -> Figure:
    """Every word of ``fig`` drawn as written, not typeset: scenario names, run labels and
    what else a user wrote may hold ``$``, which matplotlib would read as math (``$\\alpha$``
    drawn as α, a stray ``$`` an error). Only the numbers an axis's formatter writes (10^k
    on a log axis) stay typeset."""
    typeset = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if isinstance(axis.get_major_formatter(), ScalarFormatter | LogFormatter):
                typeset.update([*axis.get_ticklabels(which="both"), axis.get_offset_text()])
    for text in fig.findobj(Text):
        if text not in typeset:
            text.set_parse_math(False)
    return fig


def save(fig: Figure, out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``out_dir/name.png`` (dpi 110) and ``out_dir/name.pdf``, each atomically, its
    words as written (:func:`as_written`); returns both paths."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    as_written(fig)
    paths = Path(out_dir) / f"{name}.png", Path(out_dir) / f"{name}.pdf"
    for path, dpi in zip(paths, (DPI, None), strict=True):
        with atomic_file(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=path.suffix[1:])
    return paths
