"""``factdyn simulate``: what a run's fitted forgetting predicts for other exposure schedules."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from factdyn.cli.app import app
from factdyn.errors import DataError

if TYPE_CHECKING:
    from factdyn.analyze.prediction import Chosen, Corpus, Prediction
    from factdyn.analyze.result import Analysis


@app.command()
def simulate(
    analysis_dir: Annotated[
        Path,
        typer.Argument(help="An analysis folder, as analyze writes (RUN_DIR/analysis by default)."),
    ],
    interval: Annotated[float, typer.Option(help="Steps between exposures (Δ).")],
    exposures: Annotated[int, typer.Option(help="Number of exposures (K).")],
    scenario: Annotated[
        str | None,
        typer.Option(
            help="Whose fit to use (default: duplicate, else the first scenario with a usable fit)."
        ),
    ] = None,
    depth: Annotated[
        list[str] | None,
        typer.Option(help="A depth (repeatable; default: every depth of the scenario)."),
    ] = None,
    zipf: Annotated[
        float | None, typer.Option(help="Long tail: Zipf exponent s of the facts' frequencies.")
    ] = None,
    facts: Annotated[int | None, typer.Option(help="Long tail: number of facts N.")] = None,
    mentions: Annotated[
        float | None, typer.Option(help="Long tail: mentions of all facts together M.")
    ] = None,
    corpus_tokens: Annotated[
        float | None, typer.Option(help="Long tail: tokens C of the corpus, read once.")
    ] = None,
    tokens_per_step: Annotated[
        float | None, typer.Option(help="Long tail: tokens per step T (default: the run's).")
    ] = None,
    level: Annotated[
        float | None,
        typer.Option(help="Long tail: the final Δℓ at which a fact counts as learned."),
    ] = None,
) -> None:
    """Predict the level K exposures every Δ steps keep, and the learnability threshold τ,
    from a run's per-injection gains and power-law forgetting fit (superposed decays); with
    the long-tail options, the share of a Zipf corpus's facts learned by its end. Each
    prediction comes with a 95% interval over the analysis's bootstrap replicates."""
    from factdyn.analyze.prediction import choose, predict
    from factdyn.analyze.write import read_analysis, summary_path

    tail = {"--zipf": zipf, "--facts": facts, "--mentions": mentions}
    tail |= {"--corpus-tokens": corpus_tokens, "--level": level}
    given = _checked(interval, exposures, tail, tokens_per_step)
    file = summary_path(analysis_dir)
    analysis = read_analysis(analysis_dir)
    scenario, chosen = choose(analysis, str(file), scenario, depth)
    # the run's tokens per step, when the analysis knows them
    per_step = next((c.params.tokens_per_step for c in reversed(chosen) if c.params), None)
    lines = _header(analysis, file, scenario, exposures, interval, per_step)
    corpus = None
    if given:
        per_tail = tokens_per_step if tokens_per_step is not None else per_step
        corpus = _corpus(file, zipf, facts, mentions, corpus_tokens, per_tail, level)  # type: ignore[arg-type]
        lines.append(_corpus_line(corpus))
    for c in chosen:
        lines += ["", c.depth]
        if c.params is None:
            lines.append(f"  no prediction: {c.reason}")
            continue
        prediction = predict(analysis, c.population, c.params, interval, exposures, corpus)
        lines += _depth_lines(c, prediction, interval, exposures, per_step)
    typer.echo("\n".join(lines))


def _checked(
    interval: float, exposures: int, tail: dict[str, float | None], tokens_per_step: float | None
) -> bool:
    """Refuse a schedule that is none, or some of the long-tail options without the rest;
    whether the long tail was asked for."""
    if not exposures >= 1:
        raise DataError(f"simulate: --exposures must be at least 1, not {exposures}")
    if not interval > 0 or interval == float("inf"):
        raise DataError(f"simulate: --interval must be a positive number of steps, not {interval}")
    given = [k for k, v in tail.items() if v is not None]
    if given or tokens_per_step is not None:
        missing = [k for k, v in tail.items() if v is None]
        if missing:
            raise DataError(f"simulate: the long-tail options also need {', '.join(missing)}")
    return bool(given)


def _corpus(
    file: Path,
    zipf: float,
    facts: int,
    mentions: float,
    corpus_tokens: float,
    tokens_per_step: float | None,
    level: float,
) -> Corpus:
    """The long tail's corpus, its tokens per step given or the run's."""
    from factdyn.analyze.prediction import Corpus

    if tokens_per_step is None:
        raise DataError(f"{file}: the run's tokens per step are unknown: give --tokens-per-step")
    if not tokens_per_step > 0 or tokens_per_step == float("inf"):
        raise DataError(f"simulate: --tokens-per-step must be positive, not {tokens_per_step}")
    return Corpus(zipf, facts, mentions, corpus_tokens, tokens_per_step, level)


def _count(v: float) -> str:
    """1e9 as 1,000,000,000; 2.5e-3 as 0.0025."""
    from factdyn.report.numbers import fmt

    return fmt(v, ",.0f") if float(v).is_integer() and abs(v) < 1e15 else fmt(v, ",.6g")


def _tokens(steps: float, per_step: float | None) -> str:
    from factdyn.report.numbers import fmt

    if per_step is None:
        return "tokens per step unknown"
    return f"{fmt(steps * per_step, ',.0f')} tokens"


def _header(
    analysis: Analysis,
    file: Path,
    scenario: str,
    exposures: int,
    interval: float,
    per_step: float | None,
) -> list[str]:
    """What was asked, the model, and where the intervals come from."""
    lines = [
        f"analysis: {file} ({analysis.options.describe()})",
        f"scenario: {scenario} · {exposures} exposures every {_count(interval)} steps "
        f"({_tokens(interval, per_step)})",
        "model: Δℓ(t) = Σ_k E_k·R(t − t_k), R(0) = 1, R(u) = clip(b − a·log10 u, 0, 1)",
    ]
    if not analysis.settings.resamples:
        lines.append(
            "note: the analysis has no bootstrap replicates (analysed with --resamples 0): the "
            "predictions have no intervals"
        )
    else:
        lines.append(
            "predictions [95% CI]: over the analysis's bootstrap replicates, each with its own "
            "a, b and E_k"
        )
    return lines


def _corpus_line(corpus: Corpus) -> str:
    from factdyn.report.numbers import fmt

    tail_steps = corpus.corpus_tokens / corpus.tokens_per_step
    return (
        f"long tail: {corpus.facts:,} facts, Zipf s = {fmt(corpus.zipf, 'g')}, "
        f"{_count(corpus.mentions)} mentions in {_count(corpus.corpus_tokens)} tokens = "
        f"{_count(tail_steps)} steps of {_count(corpus.tokens_per_step)} tokens; learned: "
        f"final Δℓ ≥ {fmt(corpus.level, 'g')}"
    )


def _depth_lines(
    c: Chosen, p: Prediction, interval: float, exposures: int, per_step: float | None
) -> list[str]:
    """One depth's inputs (with the analysis's intervals) and predictions."""
    from factdyn.report.numbers import fmt, fmt_estimate, fmt_interval

    params = c.params
    assert params is not None  # a depth without params has no prediction
    gains, n, ci = params.effectivities, len(params.effectivities), params.intervals
    gain_ci = list(ci.effectivity_per_injection)
    gain_ci += [(math.nan, math.nan)] * (n - len(gain_ci))
    lines = [
        "  gain per exposure E_k [95% CI]: "
        + ", ".join(fmt_estimate(e, g, ".4g") for e, g in zip(gains, gain_ci, strict=True))
        + f" (exposures {n + 1}+ reuse E_{n})",
        f"  forgetting: a = {fmt_estimate(params.decay_constant, ci.decay_constant, '.4g')}, "
        f"b = {fmt_estimate(params.intercept, ci.intercept, '.4g')}",
    ]
    if p.skipped:
        lines.append(
            f"  {p.skipped:,} of {p.skipped + p.replicates:,} bootstrap replicates left out: "
            "no usable fit (a ≤ 0, or a, b or a gain undefined)"
        )
    lines.append(
        f"  kept after {exposures} exposures: Δℓ = {fmt_estimate(p.kept, p.kept_ci, '.4g')} at "
        f"step {_count(exposures * interval)} (one exposure keeps "
        f"{fmt_estimate(p.single, p.single_ci, '.4g')})"
    )
    tau_ci = fmt_interval(ci.x_intercept_steps, ",.0f")
    tokens_ci = fmt_interval(ci.x_intercept_tokens, ",.0f")
    in_tokens = f", CI {tokens_ci}" if per_step is not None else ""
    lines.append(
        f"  predicted threshold τ: {fmt(p.threshold, ',.0f')} steps (the analysis's 95% CI "
        f"{tau_ci}; {_tokens(p.threshold, per_step)}{in_tokens})"
    )
    if p.tail is not None:
        rank = p.tail.rank_threshold
        last = f"every rank ≤ {rank:,} {fmt_interval(p.rank_ci, ',.0f')}" + (
            f", the last mentioned {_count(p.tail.exposures[rank - 1])} times"
            if rank
            else ": not even the most frequent fact"
        )
        share = fmt_estimate(100 * p.tail.fraction_above, p.share_ci, ".4g")
        lines.append(f"  long tail: {share}% of facts learned ({last})")
    return lines
