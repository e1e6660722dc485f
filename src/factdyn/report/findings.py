"""The paper's qualitative findings (SPEC §6), each checked against analysed runs.

Every :class:`Finding` is computed from an :class:`~factdyn.analyze.result.Analysis`'s
numbers: ``reproduced`` is True or False by an explicit numerical criterion written in the
claim, or None when the runs given cannot test it (a scenario, a depth, a second run with a
different batch size, model size or stage is missing, or the numbers are undefined).
``evidence`` lists the numbers the verdict rests on.

With several runs, the single-run findings (§6.1, §6.2, §6.4) must hold in each run that can
test them; the comparisons between runs (§6.3, §6.5, :mod:`factdyn.report.between_runs`)
need runs that differ in the factor, as their meta.json states it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from factdyn.analyze.result import Analysis
from factdyn.report import between_runs as B
from factdyn.report.numbers import fmt
from factdyn.report.verdicts import (
    COMP,
    DUP,
    MEM,
    PARA,
    SEM,
    Metric,
    Verdict,
    all_of,
    decay,
    effectivity,
    finite,
    tau_tokens,
    value,
)

R2_MIN = {MEM: 0.8, SEM: 0.8, COMP: 0.65}
END_GAP_RATIO = 0.5  # "similar levels at the end": end gap < half the largest gap


@dataclass(frozen=True)
class Finding:
    """One qualitative claim of the paper and whether these runs' numbers reproduce it."""

    claim: str
    reproduced: bool | None  # None: not testable with these runs
    evidence: str
    ref: str = ""  # the SPEC §6 item, e.g. "6.1"

    @property
    def mark(self) -> str:
        return {True: "✓", False: "✗", None: "–"}[self.reproduced]


def _combine(analyses: Sequence[Analysis], labels: Sequence[str], check) -> Verdict:
    """A single-run check over every run: False if any run fails, True if every testable run
    passes (at least one), None if none can test it."""
    verdicts = [check(a) for a in analyses]
    if len(analyses) == 1:
        return verdicts[0]
    tested = [v for v, _ in verdicts if v is not None]
    result = None if not tested else all(tested)
    evidence = "; ".join(f"[{lab}] {ev}" for lab, (_, ev) in zip(labels, verdicts, strict=True))
    return result, evidence


# ---- §6.1 -------------------------------------------------------------------------------


def _every_injection_raises(a: Analysis) -> Verdict:
    parts, ok, seen = [], True, False
    for d in (MEM, SEM, COMP):
        vals = [
            v
            for p in a.populations
            if p.depth == d
            for v in p.effectivity_per_injection
            if math.isfinite(v)
        ]
        if not vals:
            continue
        seen = True
        n_pos = sum(v > 0 for v in vals)
        ok &= n_pos == len(vals)
        parts.append(f"{d}: {n_pos}/{len(vals)} injections > 0 (min {fmt(min(vals))})")
    if not seen:
        return None, "no effectivity computed"
    return ok, "; ".join(parts)


def _depth_order(a: Analysis) -> Verdict:
    parts, verdicts = [], []
    for s in a.scenarios():
        e = [value(a, s, d, effectivity) for d in (MEM, SEM, COMP)]
        if not finite(*e):
            parts.append(f"{s}: not computable")
            continue
        good = e[0] > e[1] > e[2]
        verdicts.append(good)
        mark = "✓" if good else "✗"
        parts.append(f"{s}: mem {fmt(e[0])}, sem {fmt(e[1])}, comp {fmt(e[2])} {mark}")
    return all_of(verdicts, parts, "no scenarios")


def _decays(a: Analysis) -> Verdict:
    parts, verdicts = [], []
    for s in a.scenarios():
        vals = {p.depth: p.decay_constant for p in a.populations if p.scenario == s}
        vals = {d: v for d, v in vals.items() if math.isfinite(v)}
        if vals:
            verdicts.append(all(v > 0 for v in vals.values()))
            parts.append(f"{s}: " + ", ".join(f"a_{d[:4]} {fmt(v)}" for d, v in vals.items()))
    return all_of(verdicts, parts, "no fits")


# ---- §6.2 -------------------------------------------------------------------------------


def _has_both(a: Analysis) -> bool:
    return PARA in a.scenarios() and DUP in a.scenarios()


NEEDS_BOTH = f"needs '{PARA}' and '{DUP}' scenarios"


def _dup_vs_para(metric: Metric, dup_larger: bool) -> Callable[[Analysis], Verdict]:
    def check(a: Analysis) -> Verdict:
        if not _has_both(a):
            return None, NEEDS_BOTH
        parts, verdicts = [], []
        for d in (MEM, SEM, COMP):
            p, q = value(a, PARA, d, metric), value(a, DUP, d, metric)
            if not finite(p, q):
                continue
            verdicts.append(q > p if dup_larger else q < p)
            parts.append(f"{d}: duplicate {fmt(q)} vs paraphrase {fmt(p)}")
        return all_of(verdicts, parts, "not computable")

    return check


def _end_levels(a: Analysis) -> Verdict:
    if not _has_both(a):
        return None, NEEDS_BOTH
    traj = a.trajectories
    scen, depth = traj["scenario"].astype(str), traj["depth"].astype(str)
    acq = a.acquisition
    first = acq.loc[acq["step"] >= 0, "step"]
    start = int(first.min()) if len(first) else 0
    parts, verdicts = [], []
    for d in (MEM, SEM, COMP):
        p = traj[(scen == PARA) & (depth == d)].set_index("step")["delta"]
        q = traj[(scen == DUP) & (depth == d)].set_index("step")["delta"]
        gap = (q - p).dropna()
        gap = gap[gap.index > start]
        if len(gap) < 2:
            continue
        end, largest = abs(float(gap.iloc[-1])), float(np.abs(gap.to_numpy()).max())
        verdicts.append(end < END_GAP_RATIO * largest if largest > 0 else True)
        parts.append(f"{d}: end gap {fmt(end)} vs largest {fmt(largest)}")
    return all_of(verdicts, parts, "not computable")


def _mem_sem_gap(a: Analysis) -> Verdict:
    if not _has_both(a):
        return None, NEEDS_BOTH
    rel = {}
    for s in (PARA, DUP):
        m, e = value(a, s, MEM, effectivity), value(a, s, SEM, effectivity)
        if not finite(m, e) or m <= 0:
            return None, f"{s}: memorization/semantic effectivity not computable"
        rel[s] = (m - e) / m
    good = rel[PARA] < 0.5 * rel[DUP]
    return good, f"(E_mem − E_sem)/E_mem: paraphrase {fmt(rel[PARA])}, duplicate {fmt(rel[DUP])}"


# ---- §6.4 -------------------------------------------------------------------------------


def _r2(a: Analysis) -> Verdict:
    parts, verdicts = [], []
    for s in a.scenarios():
        cells = []
        for d, floor in R2_MIN.items():
            r2 = value(a, s, d, lambda p: p.r2)
            if math.isfinite(r2):
                verdicts.append(r2 > floor)
                cells.append(f"{d[:4]} {fmt(r2, '.2f')}{'' if r2 > floor else ' ✗'}")
        if cells:
            parts.append(f"{s}: " + ", ".join(cells))
    return all_of(verdicts, parts, "no fits")


def _composition_slowest(a: Analysis) -> Verdict:
    parts, verdicts = [], []
    for s in a.scenarios():
        m, e, c = (value(a, s, d, decay) for d in (MEM, SEM, COMP))
        if not finite(m, e, c):
            continue
        verdicts.append(c < m and c < e)
        parts.append(f"{s}: a_comp {fmt(c)} vs a_mem {fmt(m)}, a_sem {fmt(e)}")
    return all_of(verdicts, parts, "not computable")


# ---- all --------------------------------------------------------------------------------

SINGLE = (
    ("6.1", "Every injection raises ℓ at every depth (each injection's mean effectivity > 0).",
     _every_injection_raises),
    ("6.1", "The rise is largest for memorization, then semantic, smallest for composition "
     "(mean effectivity, in every scenario).", _depth_order),
    ("6.1", "Without further exposure ℓ decays (decay constant a > 0 for every scenario × "
     "depth).", _decays),
    ("6.2", "Duplicate injections give larger immediate gains than paraphrases (effectivity, "
     "every depth).", _dup_vs_para(effectivity, dup_larger=True)),
    ("6.2, 6.4", "Duplicates are forgotten faster; paraphrase decays slower than duplicate "
     "(decay constant a larger for duplicate, every depth).",
     _dup_vs_para(decay, dup_larger=True)),
    ("6.2", "By the end of training duplicate and paraphrase reach similar levels (gap in mean "
     "Δℓ at the last step < half its largest value after the first injection, every depth).",
     _end_levels),
    ("6.2", "In the paraphrase scenario the memorization–semantic gap almost disappears "
     "((E_mem − E_sem)/E_mem in paraphrase < half of that in duplicate).", _mem_sem_gap),
    ("6.4", "Retainability is linear in log t: R² > 0.8 for memorization and semantic, > 0.65 "
     "for composition (every scenario).", _r2),
    ("6.4", "Composition decays slowest (a_composition below a_memorization and a_semantic, "
     "every scenario).", _composition_slowest),
)  # fmt: skip

MULTI = (
    ("6.3", "Effectivity does not improve with pretraining stage (latest stage's mean "
     "effectivity ≤ 1.1 × the earliest's).", B.stage_effectivity),
    ("6.3", "Effectivity improves with model size (mean effectivity increases with size).",
     B.size_effectivity),
    ("6.4", "At equal constant learning rate later checkpoints do not decay slower (latest "
     "stage's mean a ≥ 0.9 × the earliest's).", B.constant_lr_decay),
    ("6.5", "Smaller batches give higher effectivity (mean over scenario × depth).",
     B.batch_compare(effectivity, small_larger=True)),
    ("6.5", "Smaller batches give a larger decay constant (mean a over scenario × depth).",
     B.batch_compare(decay, small_larger=True)),
    ("6.5", "Smaller batches give a shorter learnability threshold in tokens (geometric mean "
     "of τ × tokens_per_step).", B.batch_compare(tau_tokens, False, geometric=True)),
    ("6.5", "Smaller batches hurt composition most (its τ_tokens ratio small/large batch is "
     "the lowest of the depths, and < 1).", B.batch_composition),
)  # fmt: skip


def compute_findings(
    analyses: Sequence[Analysis], labels: Sequence[str] | None = None
) -> list[Finding]:
    """Every SPEC §6 finding checked on ``analyses`` (one or more runs)."""
    analyses = list(analyses)
    labels = list(labels) if labels is not None else [f"run {k + 1}" for k in range(len(analyses))]
    out = []
    for ref, claim, check in SINGLE:
        reproduced, evidence = _combine(analyses, labels, check)
        out.append(Finding(claim, reproduced, evidence, ref))
    for ref, claim, check in MULTI:
        reproduced, evidence = check(analyses, labels)
        out.append(Finding(claim, reproduced, evidence, ref))
    return out
