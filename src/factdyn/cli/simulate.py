"""``factdyn simulate``: what a run's fitted forgetting predicts for other exposure schedules."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from factdyn.cli.app import app
from factdyn.errors import DataError


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

    from factdyn.analyze.bootstrap import interval_of
    from factdyn.analyze.simulate import (
        NoFit,
        default_scenario,
        final_levels,
        learned,
        long_tail,
        params_of,
        predicted_threshold,
        replicates_of,
    )
    from factdyn.analyze.write import read_analysis, summary_path
    from factdyn.report.numbers import fmt, fmt_estimate, fmt_interval

    def count(v: float) -> str:  # 1e9 as 1,000,000,000; 2.5e-3 as 0.0025
        return fmt(v, ",.0f") if float(v).is_integer() and abs(v) < 1e15 else fmt(v, ",.6g")

    if not exposures >= 1:
        raise DataError(f"simulate: --exposures must be at least 1, not {exposures}")
    if not interval > 0 or interval == float("inf"):
        raise DataError(f"simulate: --interval must be a positive number of steps, not {interval}")
    tail_options = {
        "--zipf": zipf,
        "--facts": facts,
        "--mentions": mentions,
        "--corpus-tokens": corpus_tokens,
        "--level": level,
    }
    given = [k for k, v in tail_options.items() if v is not None]
    if given or tokens_per_step is not None:
        missing = [k for k, v in tail_options.items() if v is None]
        if missing:
            raise DataError(f"simulate: the long-tail options also need {', '.join(missing)}")
    file = summary_path(analysis_dir)
    analysis = read_analysis(analysis_dir)
    if not analysis.populations:
        raise DataError(f"{file}: the analysis has no injected scenario")
    scenario = default_scenario(analysis) if scenario is None else scenario
    if scenario not in analysis.scenarios():
        have = ", ".join(analysis.scenarios())
        raise DataError(f"{file}: no scenario {scenario!r} (the analysis has: {have})")
    asked = bool(depth)
    depths = list(dict.fromkeys(depth)) if depth else analysis.depths(scenario)

    per_step = None  # the run's tokens per step, when the analysis knows them
    results = []  # (depth, population, params or the reason there are none)
    for d in depths:
        population = analysis.get(scenario, d)
        if population is None:
            have = ", ".join(analysis.depths(scenario))
            raise DataError(f"{file}: {scenario} has no depth {d!r} (it has: {have})")
        try:
            params = params_of(analysis, population, str(file))
        except NoFit as e:
            if asked:
                raise
            results.append((d, population, e.reason))
            continue
        per_step = params.tokens_per_step
        results.append((d, population, params))
    if not any(not isinstance(p, str) for _, _, p in results):
        reasons = "; ".join(f"{d}: {p}" for d, _, p in results)
        raise DataError(f"{file}: {scenario}: no depth has a usable forgetting fit ({reasons})")

    def tokens(steps: float) -> str:
        if per_step is None:
            return "tokens per step unknown"
        return f"{fmt(steps * per_step, ',.0f')} tokens"

    lines = [
        f"analysis: {file} ({analysis.options.describe()})",
        f"scenario: {scenario} · {exposures} exposures every {count(interval)} steps "
        f"({tokens(interval)})",
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
    if given:
        tail_per_step = tokens_per_step if tokens_per_step is not None else per_step
        if tail_per_step is None:
            raise DataError(
                f"{file}: the run's tokens per step are unknown: give --tokens-per-step"
            )
        if not tail_per_step > 0 or tail_per_step == float("inf"):
            raise DataError(f"simulate: --tokens-per-step must be positive, not {tail_per_step}")
        tail_steps = corpus_tokens / tail_per_step
        lines.append(
            f"long tail: {facts:,} facts, Zipf s = {fmt(zipf, 'g')}, {count(mentions)} "
            f"mentions in {count(corpus_tokens)} tokens = {count(tail_steps)} steps "
            f"of {count(tail_per_step)} tokens; learned: final Δℓ ≥ {fmt(level, 'g')}"
        )
    for d, population, params in results:
        lines += ["", d]
        if isinstance(params, str):
            lines.append(f"  no prediction: {params}")
            continue
        gains = params.effectivities
        n = len(gains)
        ci = params.intervals
        gain_ci = list(ci.get("effectivity_per_injection", ()))
        gain_ci += [(math.nan, math.nan)] * (n - len(gain_ci))
        lines.append(
            "  gain per exposure E_k [95% CI]: "
            + ", ".join(fmt_estimate(e, c, ".4g") for e, c in zip(gains, gain_ci, strict=True))
            + f" (exposures {n + 1}+ reuse E_{n})"
        )
        nan2 = (math.nan, math.nan)
        lines.append(
            f"  forgetting: a = {fmt_estimate(params.decay_constant, ci.get('decay_constant', nan2), '.4g')}, "
            f"b = {fmt_estimate(params.intercept, ci.get('intercept', nan2), '.4g')}"
        )
        replicates, skipped = replicates_of(analysis, population, params)
        if skipped:
            lines.append(
                f"  {skipped:,} of {skipped + len(replicates):,} bootstrap replicates left out: "
                "no usable fit (a ≤ 0, or a, b or a gain undefined)"
            )
        models = [params, *replicates]
        kept, single = final_levels(models, [exposures, 1], [interval, interval]).T
        lines.append(
            f"  kept after {exposures} exposures: Δℓ = "
            f"{fmt_estimate(kept[0], interval_of(kept[1:]), '.4g')} at step "
            f"{count(exposures * interval)} (one exposure keeps "
            f"{fmt_estimate(single[0], interval_of(single[1:]), '.4g')})"
        )
        tau = predicted_threshold(params)
        tau_ci = fmt_interval(ci.get("x_intercept_steps", nan2), ",.0f")
        tokens_ci = fmt_interval(ci.get("x_intercept_tokens", nan2), ",.0f")
        in_tokens = f", CI {tokens_ci}" if per_step is not None else ""
        lines.append(
            f"  predicted threshold τ: {fmt(tau, ',.0f')} steps (the analysis's 95% CI "
            f"{tau_ci}; {tokens(tau)}{in_tokens})"
        )
        if given:
            tail = long_tail(params, zipf, facts, mentions, corpus_tokens, tail_per_step, level)
            shares, ranks = learned(tail, replicates)
            rank = tail.rank_threshold
            last = f"every rank ≤ {rank:,} {fmt_interval(interval_of(ranks), ',.0f')}" + (
                f", the last mentioned {int(tail.exposures[rank - 1]):,} times"
                if rank
                else ": not even the most frequent fact"
            )
            share = fmt_estimate(100 * tail.fraction_above, interval_of(100 * shares), ".4g")
            lines.append(f"  long tail: {share}% of facts learned ({last})")
    typer.echo("\n".join(lines))
