"""Which figures the report page shows, in which section, with which caption: each drawn
(:mod:`factdyn.report.figures`, :mod:`factdyn.report.learnability`) and saved as PNG and PDF."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from factdyn.analyze.result import Analysis
from factdyn.report import figures as F
from factdyn.report import learnability as L
from factdyn.rundir import Run

Figures = list[tuple[str, Path, str]]  # (section, PNG path, caption) in page order


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "run"


def _no_retainability(a: Analysis) -> str:
    """The retainability caption's reason for the scenarios it cannot draw ('' when none)."""
    ret = a.retainability
    drawn = set(ret.loc[ret["t"] >= 1, "scenario"].astype(str)) if len(ret) else set()
    none = [s for s in a.scenarios() if s not in drawn]
    return (
        f" There is no retainability to draw for {', '.join(none)}: no probe has a logged step after "
        "its last acquisition maximum (the run ends too soon after its injections)."
        if none
        else ""
    )


def make_figures(
    runs: Sequence[Run], analyses: Sequence[Analysis], labels: Sequence[str], fig_dir: Path
) -> Figures:
    """Draw and save every figure; returns (section, PNG path, caption) in page order."""
    many = len(analyses) > 1
    out: Figures = []

    def keep(fig, name: str, section: str, caption: str) -> None:
        png, _ = F.save(fig, fig_dir, name)
        out.append((section, png, caption))

    for run, a, lab in zip(runs, analyses, labels, strict=True):
        suffix = f"-{_slug(lab)}" if many else ""
        keep(
            F.trajectory_figure(a, run.injections, title=lab if many else None),
            f"fig2-trajectories{suffix}",
            "trajectories",
            f"Mean Δℓ per depth over steps, injections dotted, control drift grey ({lab}).",
        )
        if not a.greedy.empty:
            keep(
                F.greedy_figure(a, run.injections, title=lab if many else None),
                f"fig2b-greedy{suffix}",
                "trajectories",
                f"Share of probes whose target is the greedy continuation, per depth over "
                f"steps, injections dotted ({lab}).",
            )
    keep(
        F.effectivity_figure(analyses, labels),
        "fig3-effectivity",
        "effectivity",
        "Effectivity by depth × scenario (bars: mean over injections; whiskers: SD over "
        "injections)" + (", runs side by side." if many else "."),
    )
    for a, lab in zip(analyses, labels, strict=True):
        suffix = f"-{_slug(lab)}" if many else ""
        keep(
            F.retainability_figure(a, title=lab if many else None),
            f"fig4-retainability{suffix}",
            "retainability",
            f"Retainability R̄(t) on a log axis with the fit R̄ = b − a·log10 t ({lab})."
            + _no_retainability(a),
        )
    for a, lab in zip(analyses, labels, strict=True):
        if L.curves_by_depth(a):
            suffix = f"-{_slug(lab)}" if many else ""
            keep(
                L.figure(a, title=lab if many else None),
                f"fig6-learnability{suffix}",
                "learnability",
                "Kept Δℓ one interval after the last of K exposures, against the interval Δ "
                f"(points: measured, 95% intervals; line: simulated from the run's '{L.SOURCE}' "
                f"items; dashed: predicted τ; dotted: largest Δ still retained) ({lab}).",
            )
    if len({a.settings.tokens_per_step for a in analyses}) > 1:
        keep(
            F.retainability_tokens_figure(analyses, labels),
            "fig5-retainability-tokens",
            "retainability",
            "Fitted forgetting over tokens for runs with different batch sizes "
            "(line style = run, τ in tokens in the legend).",
        )
    return out
