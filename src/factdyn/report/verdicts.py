"""The building blocks of the findings (:mod:`factdyn.report.findings`,
:mod:`factdyn.report.between_runs`): bootstrap estimates of the quantities a claim compares,
and the rule that turns their intervals into a verdict (docs/method.md#verdicts).

A claim compares a quantity (a difference, a ratio, a ratio of differences) with a threshold
the paper puts it on one side of. The quantity is computed replicate by replicate from the
populations' bootstrap replicates (:class:`~factdyn.analyze.bootstrap.Replicates`), so it gets
its own percentile interval, by the same method and level as every other interval:

- **reproduced** when the interval lies strictly on the paper's side of the threshold,
- **contradicted** when it lies strictly on the other side (a *reversal*: "opposite
  direction"), or when the comparison has a smallest effect of interest δ and the interval
  lies strictly inside threshold ± δ (*no difference*: "no difference (within ±δ)"),
- **inconclusive** otherwise (or when the interval is undefined).

A claim made of several comparisons (every depth, every scenario, every run) is reproduced
when all are, contradicted when any is (a reversal when any is one, else no difference),
inconclusive otherwise; it is **not testable** only when no comparison can be made (a
scenario, a depth or a run is absent, or a run has no bootstrap replicates).
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from factdyn.analyze.bootstrap import HIGH, LOW, Interval, percentiles
from factdyn.analyze.result import Analysis
from factdyn.report.numbers import fmt, fmt_interval

MEM, SEM, COMP = "memorization", "semantic", "composition"
DEPTHS = (MEM, SEM, COMP)
PARA, DUP = "paraphrase", "duplicate"

# the population fields a claim is about (each a field of Population and of Replicates)
EFF, DECAY, R2, TAU = "effectivity", "decay_constant", "r2", "x_intercept_tokens"
EFF_EACH = "effectivity_per_injection"  # (B, N): one column per injection

REPRODUCED, CONTRADICTED = "reproduced", "contradicted"
INCONCLUSIVE, NOT_TESTABLE = "inconclusive", "not testable"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE)
MARKS = {REPRODUCED: "✓", CONTRADICTED: "✗", INCONCLUSIVE: "?", NOT_TESTABLE: "–"}
REVERSAL, NO_DIFFERENCE = "reversal", "no difference"  # the two kinds of a contradiction

# Smallest effects of interest δ (docs/method.md#smallest-effects-of-interest), one per unit a
# claim is stated in. They are fixed here, before any run is judged, by one principle: the
# 10 % change that the claims of "no change" already tolerate (findings 3 and 4: latest ≤
# 1.1 × earliest, a ≥ 0.9 × earliest), never from the data of a run.
DELTA_RATIO = 0.10  # a ratio's distance from 1: within 10 % the two are the same
# nats of ℓ (effectivity and its differences): gains whose probability factors differ by < 10 %
DELTA_NATS = math.log1p(DELTA_RATIO)
# decay constant a (fraction of the gain lost per decade of steps) and its differences: < 10 %
# of the gain lost per decade more or less
DELTA_DECAY = 0.10
_LISTED = 12  # the most comparisons an evidence string lists one by one


@dataclass(frozen=True, eq=False)
class Est:
    """A quantity's point estimate and its bootstrap replicates (B,). Arithmetic acts on both
    alike, replicate by replicate, so any function of populations gets its own interval:
    replicates of one scenario's depths pair up (one item draw), and those of different
    scenarios or runs are independent draws, whose elementwise combination is as valid."""

    point: float
    reps: np.ndarray

    def interval(self) -> Interval:
        bounds = percentiles(self.reps)
        return float(bounds[LOW]), float(bounds[HIGH])

    def __add__(self, other: Est | float) -> Est:
        return lift(np.add)(self, other)

    def __radd__(self, other: float) -> Est:
        return lift(np.add)(other, self)

    def __sub__(self, other: Est | float) -> Est:
        return lift(np.subtract)(self, other)

    def __rsub__(self, other: float) -> Est:
        return lift(np.subtract)(other, self)

    def __mul__(self, other: Est | float) -> Est:
        return lift(np.multiply)(self, other)

    def __rmul__(self, other: float) -> Est:
        return lift(np.multiply)(other, self)

    def __truediv__(self, other: Est | float) -> Est:
        return lift(np.divide)(self, other)


def lift(f: Callable[..., np.ndarray]) -> Callable[..., Est]:
    """``f`` (a numpy function) applied to the point estimates and, elementwise, to the
    replicates of its :class:`Est` arguments (plain numbers are constants). Runs analysed with
    different resample counts are cut to the fewest: their draws are independent."""

    def apply(*args: Est | float) -> Est:
        n = min(len(x.reps) for x in args if isinstance(x, Est))
        points = [np.float64(x.point if isinstance(x, Est) else x) for x in args]
        reps = [x.reps[:n] if isinstance(x, Est) else x for x in args]
        with np.errstate(all="ignore"):
            return Est(float(f(*points)), np.asarray(f(*reps), dtype=float))

    return apply


def est(a: Analysis, scenario: str, depth: str, name: str, index: int | None = None) -> Est | None:
    """Field ``name`` of the scenario × depth population (its injection ``index`` for the
    per-injection effectivity); None when the run has no such population or no replicates."""
    p = a.get(scenario, depth)
    if p is None or p.replicates is None:
        return None
    point, reps = getattr(p, name), getattr(p.replicates, name)
    if index is not None:
        point, reps = point[index], reps[:, index]
    return Est(float(point), np.asarray(reps, dtype=float))


def defined(f: Callable[..., Est], *args: Est | None) -> Est | None:
    """``f(*args)``, None when any argument is missing (a population the run lacks)."""
    return None if any(x is None for x in args) else f(*args)


def minus(x: Est | None, y: Est | None) -> Est | None:
    """``x − y``, None when either is missing."""
    return defined(operator.sub, x, y)


def mean_of(ests: Sequence[Est | None], geometric: bool = False) -> Est | None:
    """The mean (or geometric mean) of the estimates with a finite (positive) point estimate,
    replicate by replicate over the same ones; None when there are none."""
    use = [e for e in ests if e is not None and math.isfinite(e.point)]
    if geometric:
        use = [e for e in use if e.point > 0]
    if not use:
        return None
    n = min(len(e.reps) for e in use)
    points, reps = np.array([e.point for e in use]), np.stack([e.reps[:n] for e in use])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate undefined everywhere
        if geometric:
            reps = np.where(reps > 0, reps, np.nan)
            return Est(float(np.exp(np.log(points).mean())), np.exp(np.nanmean(np.log(reps), 0)))
        return Est(float(points.mean()), np.nanmean(reps, axis=0))


def bootstrapped(a: Analysis) -> bool:
    """Whether every population of the run carries its bootstrap replicates."""
    return bool(a.populations) and all(p.replicates is not None for p in a.populations)


NO_REPLICATES = "no bootstrap replicates (analysed with resamples=0)"


@dataclass(frozen=True)
class Comparison:
    """One quantity, its interval, and the side of ``threshold`` the paper puts it on."""

    label: str
    estimate: float
    interval: Interval
    threshold: float = 0.0
    above: bool = True  # the paper's direction: quantity > threshold (False: <)
    delta: float | None = None  # smallest effect of interest (None: no equivalence test)

    @property
    def margin(self) -> float:
        """How far the interval lies on the paper's side of the threshold (> 0: reproduced;
        NaN when the interval is undefined)."""
        lo, hi = self.interval
        return lo - self.threshold if self.above else self.threshold - hi

    @property
    def against(self) -> float:
        """How far the interval lies on the other side (> 0: contradicted)."""
        lo, hi = self.interval
        return self.threshold - hi if self.above else lo - self.threshold

    @property
    def inside(self) -> float:
        """How far the interval lies inside threshold ± delta (> 0: no difference; NaN
        without a delta or an interval)."""
        if self.delta is None:
            return math.nan
        lo, hi = self.interval
        return self.delta - max(self.threshold - lo, hi - self.threshold)

    @property
    def verdict(self) -> str:
        """The direction decides first: an interval on either side of the threshold is
        reproduced or a reversal however small; δ decides only an interval that straddles."""
        if self.margin > 0:
            return REPRODUCED
        return CONTRADICTED if self.against > 0 or self.inside > 0 else INCONCLUSIVE

    @property
    def kind(self) -> str | None:
        """A contradiction's kind (reversal or no difference); None when not contradicted."""
        if self.verdict != CONTRADICTED:
            return None
        return REVERSAL if self.against > 0 else NO_DIFFERENCE

    def text(self) -> str:
        side = ">" if self.above else "<"
        delta = "" if self.delta is None else f", δ = {fmt(self.delta)}"
        why = {REVERSAL: " opposite direction", NO_DIFFERENCE: f" {within(self.delta)}"}
        return (
            f"{self.label}: {fmt(self.estimate)} {fmt_interval(self.interval)} "
            f"(paper: {side} {fmt(self.threshold)}{delta}) {MARKS[self.verdict]}"
            + why.get(self.kind, "")
        )


def within(delta: float | None) -> str:
    """The evidence of a no-difference contradiction."""
    return f"no difference (within ±{fmt(delta)})"


@dataclass
class Tally:
    """The comparisons a claim makes on some runs, and notes on what could not be compared."""

    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def compare(
        self,
        label: str,
        e: Est | None,
        threshold: float = 0.0,
        above: bool = True,
        delta: float | None = None,
    ) -> None:
        """Compare ``e`` with ``threshold`` (and ± ``delta``) by its bootstrap interval (a
        note when None)."""
        if e is None:
            self.notes.append(f"{label}: not computable")
        else:
            c = Comparison(label, e.point, e.interval(), threshold, above, delta)
            self.comparisons.append(c)

    def compare_defined(
        self,
        label: str,
        e: Est | None,
        threshold: float = 0.0,
        above: bool = True,
        delta: float | None = None,
    ) -> None:
        """As :meth:`compare`, for runs that are there: a quantity they leave undefined
        (no positive x-intercept, say) is an inconclusive comparison, not a missing one."""
        if e is None:
            nan, label = math.nan, f"{label} (undefined in these runs)"
            self.comparisons.append(Comparison(label, nan, (nan, nan), threshold, above, delta))
        else:
            self.compare(label, e, threshold, above, delta)

    def extend(self, other: Tally, prefix: str = "") -> None:
        """Take ``other``'s comparisons and notes, each prefixed (e.g. by a run's label)."""
        self.comparisons += [replace(c, label=prefix + c.label) for c in other.comparisons]
        self.notes += [prefix + n for n in other.notes]


@dataclass(frozen=True)
class Outcome:
    """A claim's verdict, the interval that decided it (None when not testable), evidence,
    the kind of a contradiction (reversal or no difference) and the deciding comparison's δ."""

    verdict: str
    interval: Interval | None
    evidence: str
    kind: str | None = None
    delta: float | None = None


def decide(tally: Tally, none: str = "nothing to compare") -> Outcome:
    """The verdict of all the tally's comparisons (rule in the module doc). The deciding
    comparison: the most reversed one, else the one deepest inside ±δ, else the weakest
    (smallest margin, an undefined interval first); the evidence gives it first, then the
    others (counted when many), then the notes (``none`` when nothing could be compared)."""
    comps, notes = tally.comparisons, "; ".join(tally.notes)
    if not comps:
        return Outcome(NOT_TESTABLE, None, notes or none)
    verdicts = [c.verdict for c in comps]
    if CONTRADICTED in verdicts:
        reversed_ = [c for c in comps if c.kind == REVERSAL]
        if reversed_:
            key = max(reversed_, key=lambda c: c.against)
        else:
            key = max((c for c in comps if c.kind == NO_DIFFERENCE), key=lambda c: c.inside)
        verdict = CONTRADICTED
    else:
        key = min(comps, key=lambda c: -math.inf if math.isnan(c.margin) else c.margin)
        verdict = REPRODUCED if all(v == REPRODUCED for v in verdicts) else INCONCLUSIVE
    others = [c for c in comps if c is not key]
    parts = [("decided by " if others else "") + key.text()]
    if len(others) > _LISTED:
        left = [c.verdict for c in others]
        counts = ", ".join(f"{left.count(v)} {MARKS[v]}" for v in VERDICTS[:3])
        parts.append(f"the other {len(others)}: {counts}")
    elif others:
        parts.append("others: " + "; ".join(c.text() for c in others))
    if notes:
        parts.append(notes)
    return Outcome(verdict, key.interval, "; ".join(parts), key.kind, key.delta)
