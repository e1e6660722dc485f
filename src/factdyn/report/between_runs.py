"""The findings that compare runs (SPEC §6.3, §6.5): pretraining stage, model size, batch size.

Each factor is what the runs' ``meta.json`` says (``base_step``, ``n_parameters``,
``batch_size`` in sequences; :class:`~factdyn.analyze.result.RunInfo`), never guessed from
names: a run whose meta lacks it takes no part in that comparison, and the evidence says
which field is missing. "The same model" is the same ``model.name`` in the config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from factdyn.analyze.result import Analysis
from factdyn.report.numbers import fmt
from factdyn.report.verdicts import (
    COMP,
    MEM,
    SEM,
    Metric,
    Verdict,
    decay,
    effectivity,
    finite,
    tau_tokens,
    value,
)

STAGE_TOLERANCE = 0.10  # "does not improve": latest ≤ (1 + 10 %) × earliest
DECAY_TOLERANCE = 0.10  # "does not drop": latest a ≥ (1 − 10 %) × earliest a

Runs = list[tuple[float, Analysis, str]]  # (factor, analysis, label), sorted by the factor


def _get(d: dict, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _known(analyses: Sequence[Analysis], labels: Sequence[str], field: str) -> tuple[Runs, str]:
    """The runs whose meta gives ``field`` (a :class:`RunInfo` field), sorted by it, and a
    note naming the runs whose meta.json lacks it ('' when none does)."""
    runs = [(getattr(a.run_info, field), a, lab) for a, lab in zip(analyses, labels, strict=True)]
    missing = [lab for v, _, lab in runs if v is None]
    known = sorted(((v, a, lab) for v, a, lab in runs if v is not None), key=lambda x: x[0])
    return known, (f"; meta.json has no {field} for {', '.join(missing)}" if missing else "")


def _pairs(analyses: Sequence[Analysis]) -> list[tuple[str, str]]:
    """Scenario × depth populations present in every run."""
    common = None
    for a in analyses:
        here = {(p.scenario, p.depth) for p in a.populations}
        common = here if common is None else common & here
    return sorted(common or ())


def _mean(a: Analysis, metric: Metric, pairs, geometric: bool = False) -> float:
    v = np.array([value(a, s, d, metric) for s, d in pairs], dtype=float)
    v = v[np.isfinite(v)]
    if geometric:
        v = v[v > 0]
        return float(np.exp(np.log(v).mean())) if len(v) else math.nan
    return float(v.mean()) if len(v) else math.nan


def _stage_groups(analyses, labels) -> tuple[Runs, str]:
    """The largest group of runs of one model (same ``model.name``) at ≥ 2 different stages
    (``base_step``), by stage; and the missing-meta note."""
    known, note = _known(analyses, labels, "base_step")
    groups: dict[str, Runs] = {}
    for k, a, lab in known:
        groups.setdefault(str(_get(a.config, "model", "name")), []).append((k, a, lab))
    best = max(groups.values(), key=lambda g: len({k for k, _, _ in g}), default=[])
    return (best if len({k for k, _, _ in best}) > 1 else []), note


def _stage_series(runs: Runs, metric: Metric) -> tuple[list[tuple], str]:
    """(stage step, mean ``metric`` over the scenario × depth pairs all runs share, label) per
    run, and the same as text."""
    pairs = _pairs([a for _, a, _ in runs])
    series = [(k, _mean(a, metric, pairs), lab) for k, a, lab in runs]
    return series, ", ".join(f"{lab} (step {k}): {fmt(v)}" for k, v, lab in series)


NEEDS_STAGES = "needs runs of one model (same model.name) from ≥ 2 pretraining stages"


def stage_effectivity(analyses, labels) -> Verdict:
    runs, note = _stage_groups(analyses, labels)
    if not runs:
        return None, NEEDS_STAGES + note
    e, text = _stage_series(runs, effectivity)
    if not finite(e[0][1], e[-1][1]):
        return None, text
    return e[-1][1] <= (1 + STAGE_TOLERANCE) * e[0][1], f"mean effectivity {text}"


def size_effectivity(analyses, labels) -> Verdict:
    runs, note = _known(analyses, labels, "n_parameters")
    if len({k for k, _, _ in runs}) < 2:
        return None, "needs runs of ≥ 2 model sizes" + note
    pairs = _pairs([a for _, a, _ in runs])
    sizes: dict[float, list[float]] = {}
    for k, a, _ in runs:
        sizes.setdefault(k, []).append(_mean(a, effectivity, pairs))
    means = [(k, float(np.nanmean(v))) for k, v in sorted(sizes.items())]
    text = ", ".join(f"{fmt(k, '.3g')} parameters: {fmt(v)}" for k, v in means)
    if not all(math.isfinite(v) for _, v in means):
        return None, text
    good = all(b > a for (_, a), (_, b) in zip(means, means[1:], strict=False))
    return good, f"mean effectivity by size {text}"


def constant_lr_decay(analyses, labels) -> Verdict:
    runs, note = _stage_groups(analyses, labels)
    lrs = {(_get(a.config, "optim", "lr"), _get(a.config, "optim", "schedule")) for _, a, _ in runs}
    if not runs or len(lrs) != 1 or next(iter(lrs))[1] != "constant":
        return None, f"{NEEDS_STAGES} at the same constant learning rate{note}"
    dc, text = _stage_series(runs, decay)
    if not finite(dc[0][1], dc[-1][1]):
        return None, text
    return dc[-1][1] >= (1 - DECAY_TOLERANCE) * dc[0][1], f"mean decay constant {text}"


def _batch_runs(analyses, labels):
    """The smallest- and largest-batch runs and their shared pairs, or the evidence text why
    the batch comparisons cannot be made."""
    runs, note = _known(analyses, labels, "batch_size")
    if len({k for k, _, _ in runs}) < 2:
        return None, "needs runs with ≥ 2 different batch sizes" + note
    return (runs[0], runs[-1], _pairs([runs[0][1], runs[-1][1]])), ""


def batch_compare(metric: Metric, small_larger: bool, geometric: bool = False):
    def check(analyses, labels) -> Verdict:
        found, why = _batch_runs(analyses, labels)
        if found is None:
            return None, why
        (bs, small, ls), (bl, large, ll), pairs = found
        vs, vl = _mean(small, metric, pairs, geometric), _mean(large, metric, pairs, geometric)
        text = f"batch {bs} ({ls}): {fmt(vs)} vs batch {bl} ({ll}): {fmt(vl)}"
        if not finite(vs, vl):
            return None, text
        return (vs > vl) if small_larger else (vs < vl), text

    return check


def batch_composition(analyses, labels) -> Verdict:
    found, why = _batch_runs(analyses, labels)
    if found is None:
        return None, why
    (_, small, _), (_, large, _), pairs = found
    ratio = {}
    for d in (MEM, SEM, COMP):
        sub = [p for p in pairs if p[1] == d]
        vs = _mean(small, tau_tokens, sub, geometric=True)
        vl = _mean(large, tau_tokens, sub, geometric=True)
        if finite(vs, vl) and vl > 0:
            ratio[d] = vs / vl
    text = "τ_tokens(small)/τ_tokens(large): " + ", ".join(
        f"{d} {fmt(r)}" for d, r in ratio.items()
    )
    if COMP not in ratio or len(ratio) < 2:
        return None, text
    return ratio[COMP] == min(ratio.values()) and ratio[COMP] < 1, text
