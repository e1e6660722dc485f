"""What ``factdyn simulate`` predicts from a saved analysis, per depth, as typed values: the
model's inputs it chose (:mod:`factdyn.analyze.simulate`), and each prediction with its 95%
interval over the analysis's bootstrap replicates. The command only formats them."""

from __future__ import annotations

from dataclasses import dataclass, replace

from factdyn.analyze.bootstrap import NO_INTERVAL, Interval, interval_of
from factdyn.analyze.longtail import LongTail, learned, long_tail
from factdyn.analyze.result import Analysis, Population
from factdyn.analyze.simulate import (
    ModelParams,
    NoFit,
    default_scenario,
    final_levels,
    params_of,
    predicted_threshold,
    replicates_of,
)
from factdyn.errors import DataError


@dataclass(frozen=True)
class Chosen:
    """One depth of the chosen scenario: its model inputs, or why it has none."""

    depth: str
    population: Population
    params: ModelParams | None
    reason: str = ""  # why there are no params (the fit is unusable)


@dataclass(frozen=True)
class Corpus:
    """A corpus with a long tail of facts (:func:`~factdyn.analyze.longtail.long_tail`)."""

    zipf: float
    facts: int
    mentions: float
    corpus_tokens: float
    tokens_per_step: float
    level: float


@dataclass(frozen=True)
class Prediction:
    """What one depth's fit predicts; each ``*_ci`` over the usable bootstrap replicates."""

    kept: float  # Δℓ that K exposures every Δ steps leave Δ steps after the last
    kept_ci: Interval
    single: float  # what one exposure keeps Δ steps after it
    single_ci: Interval
    threshold: float  # τ: the largest interval at which exposures accumulate, in steps
    replicates: int  # the replicates behind the intervals
    skipped: int  # replicates without a usable fit, left out
    tail: LongTail | None = None  # the long tail's facts learned (None: not asked)
    share_ci: Interval = NO_INTERVAL  # of the percentage of facts learned
    rank_ci: Interval = NO_INTERVAL  # of the last rank all of whose facts are learned


def choose(
    analysis: Analysis, origin: str, scenario: str | None, depths: list[str] | None
) -> tuple[str, list[Chosen]]:
    """The scenario (given, or :func:`~factdyn.analyze.simulate.default_scenario`) and its
    depths (given, or all) with their model inputs; refused, naming ``origin``, when one asked
    for does not exist, an asked depth has no usable fit, or no depth has one."""
    if not analysis.populations:
        raise DataError(f"{origin}: the analysis has no injected scenario")
    scenario = default_scenario(analysis) if scenario is None else scenario
    if scenario not in analysis.scenarios():
        have = ", ".join(analysis.scenarios())
        raise DataError(f"{origin}: no scenario {scenario!r} (the analysis has: {have})")
    asked = bool(depths)
    chosen = []
    for d in list(dict.fromkeys(depths)) if depths else analysis.depths(scenario):
        population = analysis.get(scenario, d)
        if population is None:
            have = ", ".join(analysis.depths(scenario))
            raise DataError(f"{origin}: {scenario} has no depth {d!r} (it has: {have})")
        try:
            params = params_of(analysis, population, origin)
        except NoFit as e:
            if asked:
                raise
            chosen.append(Chosen(d, population, None, e.reason))
            continue
        chosen.append(Chosen(d, population, params))
    if all(c.params is None for c in chosen):
        reasons = "; ".join(f"{c.depth}: {c.reason}" for c in chosen)
        raise DataError(f"{origin}: {scenario}: no depth has a usable forgetting fit ({reasons})")
    return scenario, chosen


def predict(
    analysis: Analysis,
    population: Population,
    params: ModelParams,
    interval: float,
    exposures: int,
    corpus: Corpus | None,
) -> Prediction:
    """The level ``exposures`` exposures every ``interval`` steps keep, the threshold τ, and
    with a ``corpus`` the share of its facts learned, under ``params`` and each replicate."""
    replicates, skipped = replicates_of(analysis, population, params)
    models = [params, *replicates]  # row 0: the estimate; the rest: the replicates
    kept, single = final_levels(models, [exposures, 1], [interval, interval]).T
    prediction = Prediction(
        kept=kept[0],
        kept_ci=interval_of(kept[1:]),
        single=single[0],
        single_ci=interval_of(single[1:]),
        threshold=predicted_threshold(params),
        replicates=len(replicates),
        skipped=skipped,
    )
    if corpus is None:
        return prediction
    tail = long_tail(
        params,
        *(corpus.zipf, corpus.facts, corpus.mentions, corpus.corpus_tokens),
        *(corpus.tokens_per_step, corpus.level),
    )
    shares, ranks = learned(tail, replicates)
    return replace(
        prediction, tail=tail, share_ci=interval_of(100 * shares), rank_ci=interval_of(ranks)
    )
