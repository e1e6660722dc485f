"""The paper's qualitative findings (docs/method.md), each decided by bootstrap intervals.

Every :class:`Finding` compares a quantity computed replicate by replicate from the runs'
bootstrap replicates (a difference, a ratio, a ratio of differences) with the side of a
threshold the paper puts it on (:mod:`factdyn.report.verdicts`): *reproduced* when the
quantity's interval excludes the opposite side, *contradicted* when it excludes the paper's
side (a reversal) or lies inside ± the claim's smallest effect of interest δ (no
difference), *inconclusive* otherwise, *not testable* only when the runs needed are absent.
A claim of several comparisons (every depth, every scenario, every run) is reproduced when
all are, contradicted when any is, inconclusive otherwise. ``evidence`` gives the deciding
comparison's point estimate and interval first, then the others.

With several runs, the single-run findings (§6.1, §6.2, §6.4) are compared in each run that
can test them; the comparisons between runs (§6.3, §6.5, :mod:`factdyn.report.between_runs`)
need runs that differ in the factor, as their meta.json states it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from factdyn.analyze.bootstrap import Interval
from factdyn.analyze.result import Analysis
from factdyn.report import between_runs as B
from factdyn.report.numbers import fmt, fmt_interval, run_labels
from factdyn.report.verdicts import (
    COMP,
    CONTRADICTED,
    DECAY,
    DELTA_DECAY,
    DELTA_NATS,
    DUP,
    EFF,
    EFF_EACH,
    MARKS,
    MEM,
    NO_DIFFERENCE,
    NO_REPLICATES,
    PARA,
    R2,
    REPRODUCED,
    REVERSAL,
    SEM,
    Comparison,
    Outcome,
    Tally,
    bootstrapped,
    decide,
    defined,
    est,
    minus,
    within,
)

R2_MIN = {MEM: 0.8, SEM: 0.8, COMP: 0.65}
END_GAP_RATIO = 0.5  # "similar levels at the end": end gap < half the largest gap
END_GAP_NOTE = (
    "each end-gap interval combines the two scenarios' per-step intervals of mean Δℓ (normal "
    f"approximation, no replicates); each threshold is {END_GAP_RATIO} × the largest gap, a "
    "point estimate"
)
SHORT = {MEM: "mem", SEM: "sem", COMP: "comp"}


@dataclass(frozen=True)
class Finding:
    """One qualitative claim of the paper and what these runs' intervals say of it."""

    claim: str
    verdict: str  # one of verdicts.VERDICTS
    evidence: str
    ref: str = ""  # the finding's number in docs/method.md, e.g. "1" or "2, 4"
    interval: Interval | None = None  # the deciding comparison's interval (None: not testable)
    kind: str | None = None  # a contradiction's kind: verdicts.REVERSAL or NO_DIFFERENCE
    delta: float | None = None  # the deciding comparison's smallest effect of interest

    @property
    def reproduced(self) -> bool | None:
        """True: reproduced, False: contradicted, None: inconclusive or not testable (the
        three-valued view of pages that predate the four verdicts)."""
        return {REPRODUCED: True, CONTRADICTED: False}.get(self.verdict)

    @property
    def mark(self) -> str:
        return MARKS[self.verdict]

    @property
    def contradiction(self) -> str:
        """What a contradiction rests on, in the page's words ('' when not contradicted)."""
        return {REVERSAL: "opposite direction", NO_DIFFERENCE: within(self.delta)}.get(
            self.kind, ""
        )


Check = Callable[[Analysis], Tally]


def _combine(analyses: Sequence[Analysis], labels: Sequence[str], check: Check) -> Outcome:
    """A single-run check's comparisons in every run (labelled when several), decided
    together; a run without bootstrap replicates cannot test anything."""
    total = Tally()
    for a, lab in zip(analyses, labels, strict=True):
        tally = check(a) if bootstrapped(a) else Tally(notes=[NO_REPLICATES])
        total.extend(tally, f"[{lab}] " if len(analyses) > 1 else "")
    return decide(total)


# ---- §6.1 -------------------------------------------------------------------------------


def _every_injection_raises(a: Analysis) -> Tally:
    t = Tally()
    for p in a.populations:
        for i in range(len(p.effectivity_per_injection)):
            label = f"effectivity of injection {i + 1}, {p.scenario}/{p.depth}"
            t.compare(label, est(a, p.scenario, p.depth, EFF_EACH, i), delta=DELTA_NATS)
    return t


def _depth_order(a: Analysis) -> Tally:
    t = Tally()
    for s in a.scenarios():
        for hi, lo in ((MEM, SEM), (SEM, COMP)):
            label = f"E_{SHORT[hi]} − E_{SHORT[lo]}, {s}"
            t.compare(label, minus(est(a, s, hi, EFF), est(a, s, lo, EFF)), delta=DELTA_NATS)
    return t


def _decays(a: Analysis) -> Tally:
    t = Tally()
    for p in a.populations:
        a_ = est(a, p.scenario, p.depth, DECAY)
        t.compare(f"a, {p.scenario}/{p.depth}", a_, delta=DELTA_DECAY)
    return t


# ---- §6.2 -------------------------------------------------------------------------------

NEEDS_BOTH = f"needs '{PARA}' and '{DUP}' scenarios"


def _both(check: Check) -> Check:
    """``check``, for runs that have both the paraphrase and the duplicate scenario."""

    def guarded(a: Analysis) -> Tally:
        if PARA in a.scenarios() and DUP in a.scenarios():
            return check(a)
        return Tally(notes=[NEEDS_BOTH])

    return guarded


def _dup_minus_para(name: str, noun: str, delta: float) -> Check:
    def check(a: Analysis) -> Tally:
        t = Tally()
        for d in a.depths():
            label = f"duplicate − paraphrase {noun}, {d}"
            t.compare(label, minus(est(a, DUP, d, name), est(a, PARA, d, name)), delta=delta)
        return t

    return _both(check)


def _abs_interval(lo: float, hi: float) -> Interval:
    """The interval of |x| given that of x."""
    if lo <= 0 <= hi:
        return 0.0, max(-lo, hi)
    return (lo, hi) if lo > 0 else (-hi, -lo)


def _end_gap(traj: pd.DataFrame, d: str, start: int) -> tuple[float, Interval, float] | None:
    """|duplicate − paraphrase mean Δℓ| at the last step both have after ``start``, its
    interval, and the largest |gap| after ``start``; None with fewer than two such steps.

    The trajectories table has a per-step interval for each scenario but no replicates; the
    two scenarios draw items independently, so the gap's interval is the normal-approximation
    combination of the two, each side's half-widths added in quadrature."""
    rows = [
        traj[(traj["scenario"].astype(str) == s) & (traj["depth"].astype(str) == d)].set_index(
            "step"
        )[["delta", "ci_low", "ci_high"]]
        for s in (DUP, PARA)
    ]
    both = rows[0].add_suffix("_d").join(rows[1].add_suffix("_p"), how="inner")
    gap = both["delta_d"] - both["delta_p"]
    keep = gap.notna() & (both.index > start)
    both, gap = both[keep], gap[keep]
    if len(gap) < 2:
        return None
    e = both.iloc[-1]
    below = math.hypot(e["delta_d"] - e["ci_low_d"], e["ci_high_p"] - e["delta_p"])
    above = math.hypot(e["ci_high_d"] - e["delta_d"], e["delta_p"] - e["ci_low_p"])
    end = float(gap.iloc[-1])
    return abs(end), _abs_interval(end - below, end + above), float(gap.abs().max())


def _end_levels(a: Analysis) -> Tally:
    t = Tally()
    first = a.acquisition.loc[a.acquisition["step"] >= 0, "step"]
    start = int(first.min()) if len(first) else 0
    for d in a.depths():
        found = _end_gap(a.trajectories, d, start)
        if found is None:
            t.notes.append(f"{d}: fewer than two steps of both scenarios")
            continue
        end, interval, largest = found
        label = f"|end gap| in mean Δℓ, {d} (largest gap {fmt(largest)})"
        threshold = END_GAP_RATIO * largest
        t.comparisons.append(Comparison(label, end, interval, threshold, above=False))
    if t.comparisons:
        t.notes.append(END_GAP_NOTE)
    return t


def _mem_sem_gap(a: Analysis) -> Tally:
    rel = {
        s: defined(lambda m, e: (m - e) / m, est(a, s, MEM, EFF), est(a, s, SEM, EFF))
        for s in (PARA, DUP)
    }
    t = Tally()
    if rel[PARA] is None or rel[DUP] is None:
        t.notes.append("memorization or semantic effectivity missing")
        return t
    t.compare("½ gap_duplicate − gap_paraphrase", 0.5 * rel[DUP] - rel[PARA])
    t.notes.append(
        "gap = (E_mem − E_sem)/E_mem: "
        + ", ".join(f"{s} {fmt(g.point)} {fmt_interval(g.interval())}" for s, g in rel.items())
    )
    return t


# ---- §6.4 -------------------------------------------------------------------------------


def _r2(a: Analysis) -> Tally:
    t = Tally()
    for p in a.populations:
        if p.depth in R2_MIN:
            r2 = est(a, p.scenario, p.depth, R2)
            t.compare(f"R², {p.scenario}/{p.depth}", r2, R2_MIN[p.depth])
    return t


def _composition_slowest(a: Analysis) -> Tally:
    t = Tally()
    for s in a.scenarios():
        for d in (MEM, SEM):
            label = f"a_{SHORT[d]} − a_comp, {s}"
            diff = minus(est(a, s, d, DECAY), est(a, s, COMP, DECAY))
            t.compare(label, diff, delta=DELTA_DECAY)
    return t


# ---- all --------------------------------------------------------------------------------

SINGLE = (
    ("1", "Every injection raises ℓ at every depth (each injection's mean effectivity > 0).",
     _every_injection_raises),
    ("1", "The rise is largest for memorization, then semantic, smallest for composition "
     "(mean effectivity, in every scenario).", _depth_order),
    ("1", "Without further exposure ℓ decays (decay constant a > 0 for every scenario × "
     "depth).", _decays),
    ("2", "Duplicate injections give larger immediate gains than paraphrases (effectivity, "
     "every depth).", _dup_minus_para(EFF, "effectivity", DELTA_NATS)),
    ("2, 4", "Duplicates are forgotten faster; paraphrase decays slower than duplicate "
     "(decay constant a larger for duplicate, every depth).",
     _dup_minus_para(DECAY, "decay constant", DELTA_DECAY)),
    ("2", "By the end of training duplicate and paraphrase reach similar levels (gap in mean "
     "Δℓ at the last step < half its largest value after the first injection, every depth).",
     _both(_end_levels)),
    ("2", "In the paraphrase scenario the memorization–semantic gap almost disappears "
     "((E_mem − E_sem)/E_mem in paraphrase < half of that in duplicate).",
     _both(_mem_sem_gap)),
    ("4", "Retainability is linear in log t: R² > 0.8 for memorization and semantic, > 0.65 "
     "for composition (every scenario).", _r2),
    ("4", "Composition decays slowest (a_composition below a_memorization and a_semantic, "
     "every scenario).", _composition_slowest),
)  # fmt: skip

MULTI = (
    ("3", "Effectivity does not improve with pretraining stage (latest stage's mean "
     "effectivity ≤ 1.1 × the earliest's).", B.stage_effectivity),
    ("3", "Effectivity improves with model size (mean effectivity increases with size).",
     B.size_effectivity),
    ("4", "At equal constant learning rate later checkpoints do not decay slower (latest "
     "stage's mean a ≥ 0.9 × the earliest's).", B.constant_lr_decay),
    ("5", "Smaller batches give higher effectivity (mean over scenario × depth).",
     B.batch_compare(EFF, "effectivity", DELTA_NATS)),
    ("5", "Smaller batches give a larger decay constant (mean a over scenario × depth).",
     B.batch_compare(DECAY, "decay constant", DELTA_DECAY)),
    ("5", "Smaller batches give a shorter learnability threshold in tokens (geometric mean "
     "of τ × tokens_per_step).", B.batch_threshold),
    ("5", "Smaller batches hurt composition most (its τ_tokens ratio small/large batch is "
     "the lowest of the depths, and < 1).", B.batch_composition),
)  # fmt: skip


def compute_findings(
    analyses: Sequence[Analysis],
    labels: Sequence[str] | None = None,
    single: Sequence[int] | None = None,
) -> list[Finding]:
    """Every finding of the paper (docs/method.md) decided on ``analyses`` (one or more runs); the single-run
    findings on the runs ``single`` indexes (default: every run; a grid: its reference)."""
    analyses = list(analyses)
    labels = run_labels(len(analyses), labels)
    pick = range(len(analyses)) if single is None else single
    out = []
    for ref, claim, check in SINGLE:
        o = _combine([analyses[k] for k in pick], [labels[k] for k in pick], check)
        out.append(Finding(claim, o.verdict, o.evidence, ref, o.interval, o.kind, o.delta))
    for ref, claim, check in MULTI:
        o = check(analyses, labels)
        out.append(Finding(claim, o.verdict, o.evidence, ref, o.interval, o.kind, o.delta))
    return out


def _bound(v: float) -> float | None:
    """A bound as strict JSON allows: None when undefined or infinite."""
    return v if math.isfinite(v) else None


def findings_document(found: Sequence[Finding]) -> list[dict]:
    """The findings as strict JSON (``findings.json``): claim, ref (the finding's number in
    docs/method.md), verdict (one of the four strings), the deciding interval as [lo, hi] (null
    bounds where undefined or infinite; null when not testable), kind (a contradiction's:
    "reversal" or "no difference"; null otherwise), delta (the deciding comparison's smallest
    effect of interest; null where the claim has none) and the evidence."""
    return [
        {
            "claim": f.claim,
            "ref": f.ref,
            "verdict": f.verdict,
            "interval": None if f.interval is None else [_bound(v) for v in f.interval],
            "kind": f.kind,
            "delta": f.delta,
            "evidence": f.evidence,
        }
        for f in found
    ]
