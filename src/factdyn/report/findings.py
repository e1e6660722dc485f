"""The paper's qualitative findings (SPEC §6), each checked against analysed runs.

Every :class:`Finding` is computed from an :class:`~factdyn.analyze.pipeline.Analysis`'s
numbers: ``reproduced`` is True or False by an explicit numerical criterion written in the
claim, or None when the runs given cannot test it (a scenario, a depth, a second run with a
different batch size, model size or stage is missing, or the numbers are undefined).
``evidence`` lists the numbers the verdict rests on.

With several runs, the single-run findings (§6.1, §6.2, §6.4) must hold in each run that can
test them; the comparisons between runs (§6.3, §6.5) need runs that differ in the factor.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from factdyn.analyze.pipeline import Analysis
from factdyn.rundir import CONTROL

MEM, SEM, COMP = "memorization", "semantic", "composition"
PARA, DUP = "paraphrase", "duplicate"
R2_MIN = {MEM: 0.8, SEM: 0.8, COMP: 0.65}
END_GAP_RATIO = 0.5  # "similar levels at the end": end gap < half the largest gap
STAGE_TOLERANCE = 0.10  # "does not improve": latest ≤ (1 + 10 %) × earliest
DECAY_TOLERANCE = 0.10  # "does not drop": latest a ≥ (1 − 10 %) × earliest a

Verdict = tuple[bool | None, str]


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


def _f(v: float | None, spec: str = ".3g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return format(v, spec)


def _num(a: Analysis, s: str, d: str, key: str) -> float:
    v = a.summary.get(s, {}).get(d, {}).get(key)
    return float(v) if v is not None else math.nan


def _ok(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _scenarios(a: Analysis) -> list[str]:
    return [s for s in a.summary if s != CONTROL]


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
            float(v)
            for s in _scenarios(a)
            for v in a.summary[s].get(d, {}).get("effectivity_per_injection", [])
            if v is not None and math.isfinite(float(v))
        ]
        if not vals:
            continue
        seen = True
        n_pos = sum(v > 0 for v in vals)
        ok &= n_pos == len(vals)
        parts.append(f"{d}: {n_pos}/{len(vals)} injections > 0 (min {_f(min(vals))})")
    if not seen:
        return None, "no effectivity computed"
    return ok, "; ".join(parts)


def _depth_order(a: Analysis) -> Verdict:
    parts, verdicts = [], []
    for s in _scenarios(a):
        e = [_num(a, s, d, "effectivity") for d in (MEM, SEM, COMP)]
        if not _ok(*e):
            parts.append(f"{s}: not computable")
            continue
        good = e[0] > e[1] > e[2]
        verdicts.append(good)
        parts.append(f"{s}: mem {_f(e[0])}, sem {_f(e[1])}, comp {_f(e[2])} {'✓' if good else '✗'}")
    return (all(verdicts) if verdicts else None), "; ".join(parts) or "no scenarios"


def _decays(a: Analysis) -> Verdict:
    parts, verdicts = [], []
    for s in _scenarios(a):
        vals = {d: _num(a, s, d, "decay_constant") for d in a.summary[s]}
        vals = {d: v for d, v in vals.items() if math.isfinite(v)}
        if vals:
            verdicts.append(all(v > 0 for v in vals.values()))
            parts.append(f"{s}: " + ", ".join(f"a_{d[:4]} {_f(v)}" for d, v in vals.items()))
    return (all(verdicts) if verdicts else None), "; ".join(parts) or "no fits"


# ---- §6.2 -------------------------------------------------------------------------------


def _dup_vs_para(key: str, dup_larger: bool) -> Callable[[Analysis], Verdict]:
    def check(a: Analysis) -> Verdict:
        if PARA not in a.summary or DUP not in a.summary:
            return None, f"needs '{PARA}' and '{DUP}' scenarios"
        parts, verdicts = [], []
        for d in (MEM, SEM, COMP):
            p, q = _num(a, PARA, d, key), _num(a, DUP, d, key)
            if not _ok(p, q):
                continue
            good = q > p if dup_larger else q < p
            verdicts.append(good)
            parts.append(f"{d}: duplicate {_f(q)} vs paraphrase {_f(p)}")
        return (all(verdicts) if verdicts else None), "; ".join(parts) or "not computable"

    return check


def _end_levels(a: Analysis) -> Verdict:
    if PARA not in a.summary or DUP not in a.summary:
        return None, f"needs '{PARA}' and '{DUP}' scenarios"
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
        good = end < END_GAP_RATIO * largest if largest > 0 else True
        verdicts.append(good)
        parts.append(f"{d}: end gap {_f(end)} vs largest {_f(largest)}")
    return (all(verdicts) if verdicts else None), "; ".join(parts) or "not computable"


def _mem_sem_gap(a: Analysis) -> Verdict:
    if PARA not in a.summary or DUP not in a.summary:
        return None, f"needs '{PARA}' and '{DUP}' scenarios"
    rel = {}
    for s in (PARA, DUP):
        m, e = _num(a, s, MEM, "effectivity"), _num(a, s, SEM, "effectivity")
        if not _ok(m, e) or m <= 0:
            return None, f"{s}: memorization/semantic effectivity not computable"
        rel[s] = (m - e) / m
    good = rel[PARA] < 0.5 * rel[DUP]
    return good, f"(E_mem − E_sem)/E_mem: paraphrase {_f(rel[PARA])}, duplicate {_f(rel[DUP])}"


# ---- §6.4 -------------------------------------------------------------------------------


def _r2(a: Analysis) -> Verdict:
    parts, verdicts = [], []
    for s in _scenarios(a):
        cells = []
        for d, floor in R2_MIN.items():
            r2 = _num(a, s, d, "r2")
            if math.isfinite(r2):
                verdicts.append(r2 > floor)
                cells.append(f"{d[:4]} {_f(r2, '.2f')}{'' if r2 > floor else ' ✗'}")
        if cells:
            parts.append(f"{s}: " + ", ".join(cells))
    return (all(verdicts) if verdicts else None), "; ".join(parts) or "no fits"


def _composition_slowest(a: Analysis) -> Verdict:
    parts, verdicts = [], []
    for s in _scenarios(a):
        m, e, c = (_num(a, s, d, "decay_constant") for d in (MEM, SEM, COMP))
        if not _ok(m, e, c):
            continue
        good = c < m and c < e
        verdicts.append(good)
        parts.append(f"{s}: a_comp {_f(c)} vs a_mem {_f(m)}, a_sem {_f(e)}")
    return (all(verdicts) if verdicts else None), "; ".join(parts) or "not computable"


# ---- comparisons between runs (§6.3, §6.5) ----------------------------------------------


def _get(d: dict, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def model_size(a: Analysis) -> float | None:
    """Parameters from the model's name ('OLMo-1B-hf' → 1e9, 'pythia-160m' → 1.6e8)."""
    name = str(_get(a.config, "model", "name") or "")
    m = re.search(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([mb])(?![a-z])", name, re.IGNORECASE)
    if not m:
        return None
    return float(m.group(1)) * (1e9 if m.group(2).lower() == "b" else 1e6)


def model_stage(a: Analysis) -> int | None:
    """The pretraining step of the starting checkpoint, from ``model.revision`` ('step40000-…')."""
    rev = str(_get(a.config, "model", "revision") or "")
    m = re.search(r"step[-_]?(\d+)", rev, re.IGNORECASE)
    return int(m.group(1)) if m else None


def batch_size(a: Analysis) -> float | None:
    v = _get(a.config, "train", "batch_size")
    if v is None:
        v = a.meta.get("tokens_per_step")
    return float(v) if v is not None else None


def _pairs(analyses: Sequence[Analysis]) -> list[tuple[str, str]]:
    """Scenario × depth populations present in every run."""
    common = None
    for a in analyses:
        here = {(s, d) for s in _scenarios(a) for d in a.summary[s]}
        common = here if common is None else common & here
    return sorted(common or ())


def _mean(a: Analysis, key: str, pairs, geometric: bool = False) -> float:
    v = np.array([_num(a, s, d, key) for s, d in pairs], dtype=float)
    v = v[np.isfinite(v)]
    if geometric:
        v = v[v > 0]
        return float(np.exp(np.log(v).mean())) if len(v) else math.nan
    return float(v.mean()) if len(v) else math.nan


def _by(
    analyses: Sequence[Analysis], labels: Sequence[str], key: Callable[[Analysis], float | None]
) -> list[tuple[float, Analysis, str]]:
    return sorted(
        ((k, a, lab) for a, lab in zip(analyses, labels, strict=True) if (k := key(a)) is not None),
        key=lambda x: x[0],
    )


def _stage_groups(analyses, labels) -> list[tuple[float, Analysis, str]]:
    """The largest group of runs of one model at ≥ 2 different stages, by stage."""
    groups: dict[str, list] = {}
    for k, a, lab in _by(analyses, labels, model_stage):
        groups.setdefault(str(_get(a.config, "model", "name")), []).append((k, a, lab))
    best = max(groups.values(), key=lambda g: len({k for k, _, _ in g}), default=[])
    return best if len({k for k, _, _ in best}) > 1 else []


def _stage_series(runs, key: str) -> tuple[list[tuple], str]:
    """(stage step, mean ``key`` over the scenario × depth pairs all runs share, label) per
    run, and the same as text."""
    pairs = _pairs([a for _, a, _ in runs])
    series = [(k, _mean(a, key, pairs), lab) for k, a, lab in runs]
    return series, ", ".join(f"{lab} (step {k}): {_f(v)}" for k, v, lab in series)


def _stage_effectivity(analyses, labels) -> Verdict:
    runs = _stage_groups(analyses, labels)
    if not runs:
        return None, "needs runs of one model from ≥ 2 pretraining stages (model.revision stepN)"
    e, text = _stage_series(runs, "effectivity")
    if not _ok(e[0][1], e[-1][1]):
        return None, text
    return e[-1][1] <= (1 + STAGE_TOLERANCE) * e[0][1], f"mean effectivity {text}"


def _size_effectivity(analyses, labels) -> Verdict:
    runs = _by(analyses, labels, model_size)
    if len({k for k, _, _ in runs}) < 2:
        return None, "needs runs of ≥ 2 model sizes (size read from model.name, e.g. '-1B')"
    pairs = _pairs([a for _, a, _ in runs])
    sizes: dict[float, list[float]] = {}
    for k, a, _ in runs:
        sizes.setdefault(k, []).append(_mean(a, "effectivity", pairs))
    means = [(k, float(np.nanmean(v))) for k, v in sorted(sizes.items())]
    text = ", ".join(f"{_f(k / 1e9)}B: {_f(v)}" for k, v in means)
    if not all(math.isfinite(v) for _, v in means):
        return None, text
    good = all(b > a for (_, a), (_, b) in zip(means, means[1:], strict=False))
    return good, f"mean effectivity by size {text}"


def _constant_lr_decay(analyses, labels) -> Verdict:
    runs = _stage_groups(analyses, labels)
    lrs = {(_get(a.config, "optim", "lr"), _get(a.config, "optim", "schedule")) for _, a, _ in runs}
    if not runs or len(lrs) != 1 or next(iter(lrs))[1] != "constant":
        return None, "needs runs of one model from ≥ 2 stages at the same constant learning rate"
    dc, text = _stage_series(runs, "decay_constant")
    if not _ok(dc[0][1], dc[-1][1]):
        return None, text
    return dc[-1][1] >= (1 - DECAY_TOLERANCE) * dc[0][1], f"mean decay constant {text}"


def _batch_runs(analyses, labels):
    runs = _by(analyses, labels, batch_size)
    if len({k for k, _, _ in runs}) < 2:
        return None
    return runs[0], runs[-1], _pairs([runs[0][1], runs[-1][1]])


def _batch_compare(key: str, small_larger: bool, geometric: bool = False):
    def check(analyses, labels) -> Verdict:
        found = _batch_runs(analyses, labels)
        if found is None:
            return None, "needs runs with ≥ 2 different batch sizes"
        (bs, small, ls), (bl, large, ll), pairs = found
        vs, vl = _mean(small, key, pairs, geometric), _mean(large, key, pairs, geometric)
        text = f"batch {_f(bs, 'g')} ({ls}): {_f(vs)} vs batch {_f(bl, 'g')} ({ll}): {_f(vl)}"
        if not _ok(vs, vl):
            return None, text
        return (vs > vl) if small_larger else (vs < vl), text

    return check


def _batch_composition(analyses, labels) -> Verdict:
    found = _batch_runs(analyses, labels)
    if found is None:
        return None, "needs runs with ≥ 2 different batch sizes"
    (_, small, _), (_, large, _), pairs = found
    ratio = {}
    for d in (MEM, SEM, COMP):
        sub = [p for p in pairs if p[1] == d]
        vs = _mean(small, "x_intercept_tokens", sub, geometric=True)
        vl = _mean(large, "x_intercept_tokens", sub, geometric=True)
        if _ok(vs, vl) and vl > 0:
            ratio[d] = vs / vl
    text = "τ_tokens(small)/τ_tokens(large): " + ", ".join(f"{d} {_f(r)}" for d, r in ratio.items())
    if COMP not in ratio or len(ratio) < 2:
        return None, text
    return ratio[COMP] == min(ratio.values()) and ratio[COMP] < 1, text


# ---- all --------------------------------------------------------------------------------

SINGLE = (
    ("6.1", "Every injection raises ℓ at every depth (each injection's mean effectivity > 0).",
     _every_injection_raises),
    ("6.1", "The rise is largest for memorization, then semantic, smallest for composition "
     "(mean effectivity, in every scenario).", _depth_order),
    ("6.1", "Without further exposure ℓ decays (decay constant a > 0 for every scenario × "
     "depth).", _decays),
    ("6.2", "Duplicate injections give larger immediate gains than paraphrases (effectivity, "
     "every depth).", _dup_vs_para("effectivity", dup_larger=True)),
    ("6.2, 6.4", "Duplicates are forgotten faster; paraphrase decays slower than duplicate "
     "(decay constant a larger for duplicate, every depth).",
     _dup_vs_para("decay_constant", dup_larger=True)),
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
     "effectivity ≤ 1.1 × the earliest's).", _stage_effectivity),
    ("6.3", "Effectivity improves with model size (mean effectivity increases with size).",
     _size_effectivity),
    ("6.4", "At equal constant learning rate later checkpoints do not decay slower (latest "
     "stage's mean a ≥ 0.9 × the earliest's).", _constant_lr_decay),
    ("6.5", "Smaller batches give higher effectivity (mean over scenario × depth).",
     _batch_compare("effectivity", small_larger=True)),
    ("6.5", "Smaller batches give a larger decay constant (mean a over scenario × depth).",
     _batch_compare("decay_constant", small_larger=True)),
    ("6.5", "Smaller batches give a shorter learnability threshold in tokens (geometric mean "
     "of τ × tokens_per_step).", _batch_compare("x_intercept_tokens", False, geometric=True)),
    ("6.5", "Smaller batches hurt composition most (its τ_tokens ratio small/large batch is "
     "the lowest of the depths, and < 1).", _batch_composition),
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
