"""The findings that compare runs (findings 3, 4 and 5 of docs/method.md): pretraining stage,
model size, batch size.

Each factor is what the runs' ``meta.json`` says (``base_step``, ``n_parameters``,
``batch_size`` in sequences; :class:`~factdyn.analyze.result.RunInfo`), never guessed from
names: a run whose meta lacks it, or that has no bootstrap replicates, takes no part in that
comparison, and the evidence says which. "The same model" is the same lineage: meta's
``model_lineage`` (a hub id, or the tiny base whose snapshots the stages are), else
``model.name``. Stage effectivity compares the runs at their checkpoints' own learning rates,
the decay control the runs at one equal constant rate (``lr_first``). Each compared quantity
is a mean over the scenario × depth populations the runs share, computed replicate by
replicate; the runs' replicates are independent draws, so their
elementwise differences and ratios are a bootstrap of the difference or ratio, decided as in
:mod:`factdyn.report.verdicts`.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence

from factdyn.analyze.result import Analysis
from factdyn.report.numbers import fmt
from factdyn.report.verdicts import (
    COMP,
    DECAY,
    DELTA_NATS,
    DELTA_RATIO,
    DEPTHS,
    EFF,
    TAU,
    Est,
    Outcome,
    Tally,
    bootstrapped,
    decide,
    defined,
    est,
    mean_of,
    minus,
)

STAGE_TOLERANCE = 0.10  # "does not improve": latest ≤ (1 + 10 %) × earliest
DECAY_TOLERANCE = 0.10  # "does not drop": latest a ≥ (1 − 10 %) × earliest a

Runs = list[tuple[float, Analysis, str]]  # (factor, analysis, label), sorted by the factor
Check = Callable[[Sequence[Analysis], Sequence[str]], Outcome]


def _get(d: dict, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _known(analyses: Sequence[Analysis], labels: Sequence[str], field: str) -> tuple[Runs, str]:
    """The runs whose meta gives ``field`` (a :class:`RunInfo` field) and that carry bootstrap
    replicates, sorted by ``field``, and a note naming the runs left out ('' when none is)."""
    runs = [(getattr(a.run_info, field), a, lab) for a, lab in zip(analyses, labels, strict=True)]
    missing = [lab for v, _, lab in runs if v is None]
    bare = [lab for v, a, lab in runs if v is not None and not bootstrapped(a)]
    known = sorted(
        ((v, a, lab) for v, a, lab in runs if v is not None and bootstrapped(a)),
        key=lambda x: x[0],
    )
    note = f"; meta.json has no {field} for {', '.join(missing)}" if missing else ""
    note += f"; no bootstrap replicates for {', '.join(bare)}" if bare else ""
    return known, note


def _pairs(analyses: Sequence[Analysis], depth: str | None = None) -> list[tuple[str, str]]:
    """Scenario × depth populations present in every run (of ``depth`` only, when given)."""
    common = None
    for a in analyses:
        here = {(p.scenario, p.depth) for p in a.populations if depth in (None, p.depth)}
        common = here if common is None else common & here
    return sorted(common or ())


def _mean(a: Analysis, name: str, pairs, geometric: bool = False) -> Est | None:
    """The mean of field ``name`` over ``pairs`` (geometric: of the positive values)."""
    return mean_of([est(a, s, d, name) for s, d in pairs], geometric)


def _decided(tally: Tally, none: str, note: str) -> Outcome:
    """The tally decided, with the meta note after the evidence."""
    o = decide(tally, none)
    return dataclasses.replace(o, evidence=o.evidence + note)


def _lineage(a: Analysis) -> str:
    """The model a run's checkpoint is a stage of: meta's model_lineage, else model.name."""
    return str(a.run_info.model_lineage or _get(a.config, "model", "name"))


def _own_lr(a: Analysis) -> bool:
    """The run continues its checkpoint's own learning rate: taken from the checkpoint
    (optim.lr null) or a schedule continued (not a constant lr set by hand)."""
    optim = _get(a.config, "optim") or {}
    return optim.get("lr") is None or optim.get("schedule") != "constant"


def _equal_constant_lr(a: Analysis) -> str | None:
    """The run's constant learning rate (6 significant digits: meta's lr_first, else the
    config's), None under a schedule or when neither says."""
    lr = a.run_info.lr_first
    lr = lr if lr is not None else _get(a.config, "optim", "lr")
    if _get(a.config, "optim", "schedule") != "constant" or lr is None:
        return None
    return f"{lr:.6g}"


def _largest_stage_group(groups: dict[object, Runs]) -> Runs:
    best = max(groups.values(), key=lambda g: len({k for k, _, _ in g}), default=[])
    return best if len({k for k, _, _ in best}) > 1 else []


def _stage_groups(
    analyses: Sequence[Analysis], labels: Sequence[str], equal_lr: bool = False
) -> tuple[Runs, str]:
    """The largest group of runs of one model (same lineage, batch size and parameter
    count) at ≥ 2 different stages (``base_step``), by stage, and the missing-meta note.
    The group holds the runs at their checkpoints' own learning rates (any runs, when those
    span < 2 stages); ``equal_lr``: the runs at one equal constant learning rate instead."""
    known, note = _known(analyses, labels, "base_step")
    groups: dict[object, Runs] = {}
    own: dict[object, Runs] = {}
    for k, a, lab in known:
        # one model, trained alike but for the stage: its lineage, batch size and size
        key = (_lineage(a), a.run_info.batch_size, a.run_info.n_parameters)
        if equal_lr:
            lr = _equal_constant_lr(a)
            if lr is not None:
                groups.setdefault((*key, lr), []).append((k, a, lab))
            continue
        groups.setdefault(key, []).append((k, a, lab))
        if _own_lr(a):
            own.setdefault(key, []).append((k, a, lab))
    return (_largest_stage_group(own) or _largest_stage_group(groups)), note


NEEDS_STAGES = "needs runs of one model (same lineage) from ≥ 2 pretraining stages"


def _stage_change(runs: Runs, name: str, noun: str, factor: float, above: bool) -> Tally:
    """Latest − ``factor`` × earliest stage's mean ``name`` over the pairs all runs share,
    compared with 0 (the paper's side: ``above``); every run's mean as a note."""
    pairs = _pairs([a for _, a, _ in runs])
    means = [_mean(a, name, pairs) for _, a, _ in runs]
    t = Tally()
    (k0, _, lab0), (k1, _, lab1) = runs[0], runs[-1]
    label = f"{noun}, {lab1} (step {k1}) − {fmt(factor)} × {lab0} (step {k0})"
    t.compare_defined(
        label, defined(lambda e0, e1: e1 - factor * e0, means[0], means[-1]), above=above
    )
    t.notes.append(
        "by stage: "
        + ", ".join(
            f"{lab} (step {k}): {fmt(m.point if m else float('nan'))}"
            for (k, _, lab), m in zip(runs, means, strict=True)
        )
    )
    return t


def stage_effectivity(analyses: Sequence[Analysis], labels: Sequence[str]) -> Outcome:
    runs, note = _stage_groups(analyses, labels)
    if not runs:
        return _decided(Tally(), NEEDS_STAGES, note)
    t = _stage_change(runs, EFF, "mean effectivity", 1 + STAGE_TOLERANCE, False)
    return _decided(t, NEEDS_STAGES, note)


def constant_lr_decay(analyses: Sequence[Analysis], labels: Sequence[str]) -> Outcome:
    runs, note = _stage_groups(analyses, labels, equal_lr=True)
    if not runs:
        return _decided(Tally(), f"{NEEDS_STAGES} at the same constant learning rate", note)
    t = _stage_change(runs, DECAY, "mean decay constant", 1 - DECAY_TOLERANCE, True)
    return _decided(t, NEEDS_STAGES, note)


def size_effectivity(analyses: Sequence[Analysis], labels: Sequence[str]) -> Outcome:
    runs, note = _known(analyses, labels, "n_parameters")
    if len({k for k, _, _ in runs}) < 2:
        return _decided(Tally(), "needs runs of ≥ 2 model sizes", note)
    pairs = _pairs([a for _, a, _ in runs])
    sizes: dict[float, list[Est | None]] = {}
    for k, a, _ in runs:
        sizes.setdefault(k, []).append(_mean(a, EFF, pairs))
    means = [(k, mean_of(v)) for k, v in sorted(sizes.items())]
    t = Tally()
    for (k0, e0), (k1, e1) in zip(means, means[1:], strict=False):
        label = f"mean effectivity, {fmt(k1, '.3g')} − {fmt(k0, '.3g')} parameters"
        t.compare_defined(label, minus(e1, e0), delta=DELTA_NATS)
    return _decided(t, "needs runs of ≥ 2 model sizes", note)


def _batch_runs(analyses: Sequence[Analysis], labels: Sequence[str]) -> tuple[tuple | None, str]:
    """The smallest- and largest-batch runs and their labels for the evidence, or None, and
    the note (why not, or which runs' meta lacks the batch size)."""
    runs, note = _known(analyses, labels, "batch_size")
    if len({k for k, _, _ in runs}) < 2:
        return None, "needs runs with ≥ 2 different batch sizes" + note
    (bs, small, ls), (bl, large, ll) = runs[0], runs[-1]
    return (small, large, f"batch {bs} ({ls})", f"batch {bl} ({ll})"), note


def _batch_check(compare: Callable[[Analysis, Analysis, str, str, Tally], None]) -> Check:
    """A check of the smallest against the largest batch run: ``compare`` adds comparisons
    to the tally from (small, large, the texts naming each)."""

    def check(analyses: Sequence[Analysis], labels: Sequence[str]) -> Outcome:
        found, note = _batch_runs(analyses, labels)
        t = Tally()
        if found is None:
            return _decided(t, note, "")
        compare(*found, t)
        return _decided(t, "", note)

    return check


def batch_compare(name: str, noun: str, delta: float) -> Check:
    """Smaller batch − larger batch mean ``name`` over the shared pairs, paper: > 0 (δ:
    ``delta``)."""

    def compare(small: Analysis, large: Analysis, ts: str, tl: str, t: Tally) -> None:
        pairs = _pairs([small, large])
        vs, vl = _mean(small, name, pairs), _mean(large, name, pairs)
        t.compare_defined(f"mean {noun}, {ts} − {tl}", minus(vs, vl), delta=delta)

    return _batch_check(compare)


def _tau_ratio(small: Analysis, large: Analysis, depth: str | None = None) -> Est | None:
    """Geometric mean τ_tokens of the smaller batch ÷ that of the larger (of ``depth``)."""
    pairs = _pairs([small, large], depth)
    vs, vl = _mean(small, TAU, pairs, True), _mean(large, TAU, pairs, True)
    return defined(operator.truediv, vs, vl)


def _threshold(small: Analysis, large: Analysis, ts: str, tl: str, t: Tally) -> None:
    label = f"geometric mean τ_tokens, {ts} ÷ {tl}"
    t.compare_defined(label, _tau_ratio(small, large), 1.0, False, DELTA_RATIO)


def _composition(small: Analysis, large: Analysis, ts: str, tl: str, t: Tally) -> None:
    """ratio_comp < 1 and ratio_comp − ratio_d < 0 for the other depths, where ratio_d is
    the depth's geometric mean τ_tokens of the smaller batch ÷ the larger's."""
    ratio = {d: _tau_ratio(small, large, d) for d in DEPTHS}
    comp = ratio[COMP]
    t.compare_defined(f"τ_tokens ratio {ts} ÷ {tl}, composition", comp, 1.0, False, DELTA_RATIO)
    for d in DEPTHS[:2]:
        if ratio[d] is not None and comp is not None:
            label = f"composition − {d} τ_tokens ratio"
            t.compare_defined(label, comp - ratio[d], above=False, delta=DELTA_RATIO)


batch_threshold = _batch_check(_threshold)
batch_composition = _batch_check(_composition)
