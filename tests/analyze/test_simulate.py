"""`factdyn simulate`: the superposition model against hand arithmetic and brute-force loops
written here, its threshold against the planted 10^(b/a), and the reader against analyses of
planted runs; no torch."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
from analyze_synth import planted_run
from typer.testing import CliRunner

import factdyn.cli.simulate  # noqa: F401  (registers the command on the app)
from factdyn.analyze.bootstrap import Replicates
from factdyn.analyze.longtail import learned, long_tail
from factdyn.analyze.populations import analyze_run
from factdyn.analyze.simulate import (
    ModelParams,
    final_levels,
    kept_levels,
    params_of,
    predicted_threshold,
    simulate,
)
from factdyn.analyze.write import read_analysis, read_summary, write_analysis
from factdyn.cli import app
from factdyn.errors import DataError

runner = CliRunner()


def R(a: float, b: float, age: float) -> float:
    """The model's retention, written out independently of the module."""
    if age == 0:
        return 1.0
    return min(1.0, max(0.0, b - a * math.log10(age)))


def brute_level(gains, a, b, exposure_steps, at):
    """Σ over exposures up to ``at`` of E_k·R(at − t_k), E_k past the measured ones = the last."""
    total = 0.0
    for k, t in enumerate(sorted(exposure_steps)):
        if t <= at:
            total += gains[min(k, len(gains) - 1)] * R(a, b, at - t)
    return total


@pytest.fixture(scope="module")
def planted():
    return planted_run()  # duplicate: 5 injections, a = 0.25, b = 0.9; once: a = 0.15, b = 0.8


@pytest.fixture(scope="module")
def analysis_dir(planted, tmp_path_factory):
    analysis = analyze_run(planted.run, resamples=50)
    return analysis, write_analysis(analysis, tmp_path_factory.mktemp("sim") / "analysis")


# ---- the model ----


@pytest.mark.parametrize("a, b", [(0.25, 0.9), (0.2, 0.9), (0.3, 1.3), (0.5, -0.2), (0.05, 3.5)])
def test_threshold_is_the_x_intercept_of_the_planted_line(a, b):
    p = ModelParams((0.7,), a, b)
    assert predicted_threshold(p) == pytest.approx(10 ** (b / a), rel=1e-12)


def test_a_threshold_past_the_floats_is_infinite():
    assert predicted_threshold(ModelParams((0.7,), 0.01, 3.5)) == math.inf  # 10^350


def test_kept_levels_rise_below_the_threshold_and_stay_flat_above():
    a, b, e = 0.25, 0.9, 0.7
    p = ModelParams((e,), a, b)
    tau = 10**3.6  # 3981.07...
    just_below = kept_levels(p, math.floor(tau), 6)
    assert (just_below > 0).all()
    assert just_below[0] == pytest.approx(e * (b - a * math.log10(3981)), rel=1e-12)
    for delta in (math.ceil(tau), 5000, 1e6):
        assert (kept_levels(p, delta, 6) == 0).all()  # each exposure starts from ℓ_0 again
    levels = kept_levels(p, 100, 30)  # ages 100..3000 all under τ: every exposure adds
    assert (np.diff(levels) > 0).all()
    for k in (1, 2, 17, 30):  # E·Σ_{m ≤ k} (b − a·log10(100 m)), no clipping in this range
        expected = e * sum(b - a * math.log10(100 * m) for m in range(1, k + 1))
        assert levels[k - 1] == pytest.approx(expected, rel=1e-12)


def test_superposition_computed_by_hand():
    p = ModelParams((0.5, 0.4, 0.3), 0.2, 0.9)
    # at step 25 the exposures of steps 0, 10, 20 are 25, 15 and 5 steps old:
    # 0.5·(0.9 − 0.2·log10 25) = 0.5·(0.9 − 0.2·1.397940) = 0.5·0.620412 = 0.310206
    # 0.4·(0.9 − 0.2·log10 15) = 0.4·(0.9 − 0.2·1.176091) = 0.4·0.664782 = 0.265913
    # 0.3·(0.9 − 0.2·log10 5)  = 0.3·(0.9 − 0.2·0.698970) = 0.3·0.760206 = 0.228062
    by_hand = 0.310206 + 0.265913 + 0.228062  # 0.804181
    at_25 = simulate(p, [20, 0, 10], [25])[0]  # the exposure steps' order does not matter
    assert at_25 == pytest.approx(by_hand, abs=2e-6)
    assert at_25 == pytest.approx(
        0.5 * (0.9 - 0.2 * math.log10(25))
        + 0.4 * (0.9 - 0.2 * math.log10(15))
        + 0.3 * (0.9 - 0.2 * math.log10(5)),
        rel=1e-12,
    )
    # before any exposure: 0; at step 20 the third gain is whole (R(0) = 1):
    # 0.5·(0.9 − 0.2·log10 20) + 0.4·(0.9 − 0.2·log10 10) + 0.3 = 0.319897 + 0.28 + 0.3
    before, at_20 = simulate(p, [0, 10, 20], [-1, 20])
    assert before == 0
    assert at_20 == pytest.approx(0.319897 + 0.28 + 0.3, abs=2e-6)
    # b > 1: R is clipped to 1 while b − a·log10 u ≥ 1 (u ≤ 10^(0.2/0.2) = 10 steps)
    clipped = ModelParams((0.5,), 0.2, 1.2)
    assert simulate(clipped, [0], [5, 10, 100]) == pytest.approx([0.5, 0.5, 0.5 * 0.8])


def test_kept_levels_match_a_loop_with_unequal_gains():
    gains, a, b = (0.5, 0.4, 0.3), 0.2, 0.9
    p = ModelParams(gains, a, b)
    for delta, k in ((10, 7), (3.5, 12), (2000, 4)):
        levels = kept_levels(p, delta, k)
        for j in range(1, k + 1):  # just before exposure j + 1, at step j·Δ
            steps = [i * delta for i in range(j)]
            assert levels[j - 1] == pytest.approx(
                brute_level(gains, a, b, steps, j * delta), rel=1e-12, abs=1e-15
            )
    # above τ = 10^4.5 each exposure starts from 0: the peak after exposure k is E_k
    peaks = simulate(p, [0, 40000, 80000, 120000], [0, 40000, 80000, 120000])
    assert peaks == pytest.approx([0.5, 0.4, 0.3, 0.3])


@pytest.mark.parametrize(
    "gains, a, b, corpus_tokens, level",
    [
        ((1.0, 1.1, 1.2), 0.3, 1.3, 1e6, 0.8),  # R = 1 up to 10 steps; S = 10,000 steps
        ((0.9, 0.6), 0.25, 0.9, 1e4, 1.5),  # S = 100 steps: top facts seen many times a step
    ],
)
def test_long_tail_matches_a_loop_over_facts(gains, a, b, corpus_tokens, level):
    n_facts, s, m, per_step = 200, 1.1, 5000.0, 100.0
    p = ModelParams(gains, a, b)
    tail = long_tail(p, s, n_facts, m, corpus_tokens, per_step, level)
    total_steps = corpus_tokens / per_step
    norm = sum(j**-s for j in range(1, n_facts + 1))
    above = 0
    for r in range(1, n_facts + 1):
        n = math.floor(m * r**-s / norm)
        assert tail.exposures[r - 1] == n
        steps = [i * total_steps / n for i in range(n)]  # evenly spaced from step 0
        final = brute_level(gains, a, b, steps, total_steps) if n else 0.0
        assert tail.final_levels[r - 1] == pytest.approx(final, rel=1e-9, abs=1e-12)
        above += final >= level
    assert 0 < above < n_facts  # the level splits the facts
    assert tail.fraction_above == above / n_facts
    leading = next(r - 1 for r in range(1, n_facts + 1) if tail.final_levels[r - 1] < level)
    assert tail.rank_threshold == leading
    assert tail.steps == total_steps and list(tail.ranks[:3]) == [1, 2, 3]


def test_long_tail_of_a_million_facts_matches_the_exposure_by_exposure_levels():
    """At a paper-scale corpus (no wall-clock bound: speed belongs to benchmarks)."""
    p = ModelParams((1.0, 1.1, 1.2), 0.25, 0.9)
    tail = long_tail(p, 1.05, 1_000_000, 1e9, 1e10, 1000, 1.0)
    assert 0 < tail.fraction_above < 1
    # facts mentioned less often than every τ steps keep nothing
    rare = tail.intervals >= 10**3.6
    assert rare.any() and (tail.final_levels[rare] == 0).all()
    r = 5000  # one fact checked by kept_levels (its n in the thousands)
    n = int(tail.exposures[r - 1])
    assert tail.final_levels[r - 1] == pytest.approx(kept_levels(p, 1e7 / n, n)[-1], rel=1e-9)


def test_final_levels_are_each_parameter_sets_last_kept_level():
    rng = np.random.default_rng(5)
    sets = [  # τ = 10^(b/a) from ~10 steps to 10^15: ages on both sides of each
        ModelParams(tuple(rng.uniform(0.2, 1.5, 4)), a, b)
        for a, b in zip(rng.uniform(0.1, 0.6, 50), rng.uniform(0.5, 1.5, 50), strict=True)
    ]
    n = [1, 2, 3, 4, 7, 30, 1, 5, 3]
    delta = [1.0, 3, 10, 40, 100, 7, 1000, 2.5, 1e5]
    levels = final_levels(sets, n, delta)  # all sets at once
    for p, row in zip(sets, levels, strict=True):
        for m, d, got in zip(n, delta, row, strict=True):
            assert got == pytest.approx(kept_levels(p, d, m)[-1], rel=1e-12, abs=1e-15)


def test_learned_is_each_parameter_sets_own_long_tail():
    rng = np.random.default_rng(3)
    sets = [
        ModelParams(tuple(rng.uniform(0.3, 1.2, 3)), a, b)
        for a, b in zip(rng.uniform(0.1, 0.5, 120), rng.uniform(0.6, 1.6, 120), strict=True)
    ]
    args = (1.05, 100_000, 1e8, 1e9, 1000, 2.0)
    tail = long_tail(sets[0], *args)
    shares, ranks = learned(tail, sets)  # several blocks of sets, sorted by their τ
    own = [long_tail(p, *args) for p in sets]
    assert list(shares) == [t.fraction_above for t in own]
    assert list(ranks) == [t.rank_threshold for t in own]
    assert len(set(shares)) > 60  # the sets differ in what they learn


def test_bad_inputs_are_data_errors():
    p = ModelParams((0.5,), 0.2, 0.9)
    for k in (0, -3, 2.5):
        with pytest.raises(DataError, match="exposures"):
            kept_levels(p, 10, k)
    for delta in (0, -5, math.nan, math.inf):
        with pytest.raises(DataError, match="interval"):
            kept_levels(p, delta, 3)
    with pytest.raises(DataError, match="exposure steps"):
        simulate(p, [0, math.nan], [5])
    for kwargs, field in (
        ({"zipf": -1}, "zipf"),
        ({"facts": 0}, "facts"),
        ({"mentions": -1}, "mentions"),
        ({"corpus_tokens": 0}, "corpus_tokens"),
        ({"tokens_per_step": -2}, "tokens_per_step"),
        ({"level": 0}, "level"),
    ):
        args = {"zipf": 1.0, "facts": 10, "mentions": 100, "corpus_tokens": 1e4}
        args |= {"tokens_per_step": 10, "level": 0.1} | kwargs
        with pytest.raises(DataError, match=field):
            long_tail(p, **args)
    for a, b, gains, field in (
        (0.0, 0.9, (0.5,), "decay_constant"),
        (-0.1, 0.9, (0.5,), "decay_constant"),
        (math.nan, 0.9, (0.5,), "decay_constant"),
        (0.2, math.nan, (0.5,), "intercept"),
        (0.2, 0.9, (), "effectivity_per_injection"),
        (0.2, 0.9, (0.5, math.nan), "effectivity_per_injection"),
    ):
        with pytest.raises(DataError, match=field):
            ModelParams(gains, a, b)


# ---- a written analysis ----


def _params(folder, scenario, depth):
    analysis = read_analysis(folder)
    return params_of(analysis, analysis.get(scenario, depth), str(folder / "summary.json"))


def test_reads_back_the_written_analysis(analysis_dir, planted):
    analysis, out = analysis_dir
    back = read_analysis(out)
    assert {s: tuple(back.depths(s)) for s in back.scenarios()} == {
        s: tuple(analysis.depths(s)) for s in analysis.scenarios()
    }
    for scenario in ("duplicate", "once"):
        for depth in analysis.depths(scenario):
            pop = analysis.get(scenario, depth)
            p = _params(out, scenario, depth)
            assert p.decay_constant == pytest.approx(pop.decay_constant, rel=1e-12)
            assert p.intercept == pytest.approx(pop.intercept, rel=1e-12)
            assert p.effectivities == pytest.approx(pop.effectivity_per_injection, rel=1e-12)
            assert p.x_intercept_steps == pytest.approx(pop.x_intercept_steps, rel=1e-12)
            assert p.tokens_per_step == 1000
            # and the planted truth behind them
            a, b = planted.decay[scenario]
            assert p.decay_constant == pytest.approx(a, abs=0.02)
            assert p.intercept == pytest.approx(b, abs=0.03)
            assert p.effectivities == pytest.approx(planted.gains[scenario, depth], rel=0.05)
            assert predicted_threshold(p) == pytest.approx(pop.x_intercept_steps, rel=1e-9)


def test_a_percent_fit_is_read_in_fractions(planted, tmp_path):
    analysis = analyze_run(planted.run, reference=True, resamples=0)
    out = write_analysis(analysis, tmp_path / "ref")
    assert read_summary(out)["_settings"]["retainability_unit"] == "percent"
    pop = analysis.get("duplicate", "semantic")
    p = _params(out, "duplicate", "semantic")
    assert pop.decay_constant == pytest.approx(25, abs=2)  # the file holds percent
    assert p.decay_constant == pytest.approx(pop.decay_constant / 100, rel=1e-12)
    assert p.intercept == pytest.approx(pop.intercept / 100, rel=1e-12)
    assert predicted_threshold(p) == pytest.approx(pop.x_intercept_steps, rel=1e-9)


def _doctored(out, tmp_path, change) -> object:
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    doc = json.loads((bad / "summary.json").read_text())
    change(doc)
    (bad / "summary.json").write_text(json.dumps(doc))
    return bad


def test_unusable_summaries_are_data_errors_naming_file_and_field(analysis_dir, tmp_path, exits_2):
    _, out = analysis_dir

    def null_a(doc):
        doc["duplicate"]["memorization"]["decay_constant"] = None

    bad = _doctored(out, tmp_path, null_a)
    file = str(bad / "summary.json")
    with pytest.raises(DataError) as e:
        _params(bad, "duplicate", "memorization")
    assert file in str(e.value) and "duplicate/memorization" in str(e.value)
    assert "decay_constant" in str(e.value) and "\n" not in str(e.value)
    line = exits_2(sim_args(out, "--scenario", "paraphrase"))
    assert "no scenario 'paraphrase'" in line
    assert "no depth 'deep'" in exits_2(sim_args(out, "--depth", "deep"))
    assert "no such folder" in exits_2(sim_args(tmp_path / "missing"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{not json")
    assert "not valid JSON" in exits_2(sim_args(tmp_path / "broken"))


# ---- the command ----


def test_command_prints_the_prediction_per_depth(analysis_dir):
    analysis, out = analysis_dir
    args = ["simulate", str(out), "--interval", "100", "--exposures", "10"]
    args += ["--zipf", "1.1", "--facts", "10000", "--mentions", "1e6"]
    args += ["--corpus-tokens", "1e9", "--level", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "scenario: duplicate" in text  # the default scenario
    for depth in analysis.depths("duplicate"):
        pop = analysis.get("duplicate", depth)
        a, b, gains = pop.decay_constant, pop.intercept, pop.effectivity_per_injection
        block = text.split(f"\n{depth}\n")[1].split("\n\n")[0]
        # each number printed with the analysis's own 95% interval beside it
        ci = [f"[{lo:.3g}, {hi:.3g}]" for lo, hi in (pop.decay_constant_ci, pop.intercept_ci)]
        assert f"a = {a:.4g} {ci[0]}, b = {b:.4g} {ci[1]}" in block
        per = zip(gains, pop.effectivity_per_injection_ci, strict=True)
        assert ", ".join(f"{e:.4g} [{lo:.3g}, {hi:.3g}]" for e, (lo, hi) in per) in block
        kept = brute_level(gains, a, b, [100 * i for i in range(10)], 1000)
        assert re.search(rf"Δℓ = {kept:.4g} \[[-\d.e]+, [-\d.e]+\] at step 1,000", block)
        tau = 10 ** (b / a)
        lo, hi = pop.x_intercept_steps_ci
        lo_t, hi_t = pop.x_intercept_tokens_ci  # the analysis's own, in tokens
        assert (
            f"τ: {tau:,.0f} steps (the analysis's 95% CI [{lo:,.0f}, {hi:,.0f}]; "
            f"{tau * 1000:,.0f} tokens, CI [{lo_t:,.0f}, {hi_t:,.0f}])"
        ) in block
        assert re.search(r"\]% of facts learned \(every rank ≤ [\d,]+ \[", block)


def test_command_bad_input_is_a_data_error_and_exit_code_2(analysis_dir, tmp_path, exits_2):
    _, out = analysis_dir

    def null_a(doc):
        doc["duplicate"]["composition"]["decay_constant"] = None

    bad = _doctored(out, tmp_path, null_a)

    def sim(path, interval="100", exposures="10"):
        return ["simulate", str(path), "--interval", interval, "--exposures", exposures]

    long_tail_args = ["--zipf", "1", "--facts", "10", "--mentions", "100"]
    long_tail_args += ["--corpus-tokens", "1e6", "--level", "0.5"]
    cases = [
        (sim(out, exposures="0"), "--exposures"),
        (sim(out, exposures="-2"), "--exposures"),
        (sim(out, interval="0"), "--interval"),
        (sim(out, interval="-5"), "--interval"),
        ([*sim(out), "--scenario", "paraphrase"], "no scenario"),
        ([*sim(out), "--zipf", "1.1"], "--facts"),
        ([*sim(out), *long_tail_args, "--tokens-per-step", "0"], "--tokens-per-step"),
        ([*sim(out), *long_tail_args, "--facts", "0"], "facts"),
        ([*sim(tmp_path / "missing")], "no such folder"),
        ([*sim(bad), "--depth", "composition"], "decay_constant"),
    ]
    for argv, words in cases:
        result = runner.invoke(app, argv)
        assert isinstance(result.exception, DataError), (argv, result.output)
        assert words in str(result.exception)
        exits_2(argv)
    # with every depth by default, one without a fit is reported and the others predicted
    result = runner.invoke(app, sim(bad))
    assert result.exit_code == 0, result.output
    assert "composition\n  no prediction: decay_constant is null" in result.output
    assert result.output.count("predicted threshold") == 2


# ---- intervals from the analysis's bootstrap replicates ----

B = 400  # planted replicates, 3 of them without a fit


def inverted_cdf(x) -> tuple[float, float]:
    """The bootstrap's 95% percentile interval written out: the ⌈n·q⌉-th smallest of the n
    defined values, q = 0.025 and 0.975."""
    x = np.sort(np.asarray(x)[~np.isnan(x)])
    return x[math.ceil(0.025 * len(x)) - 1], x[math.ceil(0.975 * len(x)) - 1]


def write_planted(folder, unit: str = "fraction"):
    """An analysis folder written here: a real analysis of a planted run whose one population
    duplicate/semantic is given these numbers and replicates, drawn with a ~ N(0.3, 0.04) and
    b = 0.4 + 2.5·a + N(0, 0.02) (tied, as a fit's a and b are), E_1 ~ N(0.8, 0.05),
    E_2 ~ N(0.6, 0.05); two replicates with a < 0 and one with a NaN. Returns a, b
    (fractions) and the gains (B, 2) as the reader gets them from the file."""
    rng = np.random.default_rng(7)
    a = rng.normal(0.3, 0.04, B)
    b = 0.4 + 2.5 * a + rng.normal(0, 0.02, B)
    gains = np.stack([rng.normal(0.8, 0.05, B), rng.normal(0.6, 0.05, B)], axis=1)
    a[[5, 77]], a[200] = -0.1, np.nan
    scale = 100.0 if unit == "percent" else 1.0
    base = analyze_run(planted_run().run, reference=unit == "percent", resamples=0)
    nan2 = (math.nan, math.nan)
    population = dataclasses.replace(
        base.get("duplicate", "semantic"),
        effectivity_per_injection=(0.8, 0.6),
        effectivity_per_injection_ci=(nan2, nan2),
        decay_constant=0.3 * scale,
        intercept=1.15 * scale,
        x_intercept_steps=10 ** (1.15 / 0.3),
        replicates=Replicates(
            effectivity=gains.mean(axis=1),
            effectivity_per_injection=gains,
            decay_constant=a * scale,
            intercept=b * scale,
            r2=np.full(B, 0.9),
            x_intercept_tokens=np.full(B, np.nan),
        ),
    )
    settings = dataclasses.replace(base.settings, resamples=B, tokens_per_step=1000)
    analysis = dataclasses.replace(base, populations=(population,), settings=settings)
    write_analysis(analysis, folder)
    return a, b, gains


def sim_args(folder, *more: str) -> list[str]:
    return ["simulate", str(folder), "--interval", "100", "--exposures", "3", *more]


@pytest.mark.parametrize("unit", ["fraction", "percent"])
def test_planted_replicates_give_the_closed_form_intervals(tmp_path, unit):
    a, b, gains = write_planted(tmp_path / "planted", unit)
    fit = np.isfinite(a) & (a > 0)
    a, b, e1, e2 = a[fit], b[fit], gains[fit, 0], gains[fit, 1]

    def r(t):  # each replicate's R(t), the clipped line
        return np.clip(b - a * np.log10(t), 0, 1)

    single = e1 * r(100)  # one exposure, Δ = 100 steps later
    kept = e1 * r(300) + e2 * r(200) + e2 * r(100)  # the third exposure reuses E_2
    result = runner.invoke(app, sim_args(tmp_path / "planted"))
    assert result.exit_code == 0, result.output
    lo, hi = inverted_cdf(kept)
    lo1, hi1 = inverted_cdf(single)
    point = 0.8 * (1.15 - 0.3 * math.log10(300)) + 0.6 * (1.15 - 0.3 * math.log10(200))
    point += 0.6 * (1.15 - 0.3 * math.log10(100))
    assert (
        f"Δℓ = {point:.4g} [{lo:.3g}, {hi:.3g}] at step 300 "
        f"(one exposure keeps {0.8 * 0.55:.4g} [{lo1:.3g}, {hi1:.3g}])"
    ) in result.output
    assert "3 of 400 bootstrap replicates left out" in result.output
    # the planted a and b are tied: their marginal intervals, combined, give a much wider one
    (a_lo, a_hi), (b_lo, b_hi) = inverted_cdf(a), inverted_cdf(b)
    e_lo, e_hi = inverted_cdf(e1)
    marginal = (e_lo * (b_lo - a_hi * 2), e_hi * (b_hi - a_lo * 2))
    assert marginal[1] - marginal[0] > 3 * (hi1 - lo1)


def test_planted_replicates_give_the_long_tail_its_interval(tmp_path):
    a, b, gains = write_planted(tmp_path / "planted")
    tail_args = ["--zipf", "1", "--facts", "2000", "--mentions", "1e5"]
    tail_args += ["--corpus-tokens", "1e7", "--level", "1"]
    result = runner.invoke(app, sim_args(tmp_path / "planted", *tail_args))
    assert result.exit_code == 0, result.output
    shares, ranks = [], []
    for ai, bi, gi in zip(a, b, gains, strict=True):
        if ai > 0:  # each replicate's long tail on its own (the loop the command avoids)
            tail = long_tail(ModelParams(tuple(gi), ai, bi), 1, 2000, 1e5, 1e7, 1000, 1)
            shares.append(100 * tail.fraction_above)
            ranks.append(tail.rank_threshold)
    point = long_tail(ModelParams((0.8, 0.6), 0.3, 1.15), 1, 2000, 1e5, 1e7, 1000, 1)
    lo, hi = inverted_cdf(shares)
    r_lo, r_hi = inverted_cdf(ranks)
    assert 0 < lo < hi < 100
    assert (
        f"long tail: {100 * point.fraction_above:.4g} [{lo:.3g}, {hi:.3g}]% of facts learned "
        f"(every rank ≤ {point.rank_threshold:,} [{r_lo:,.0f}, {r_hi:,.0f}]"
    ) in result.output


def test_the_analysis_writes_the_replicates_behind_its_intervals(planted, tmp_path):
    for reference in (False, True):  # a percent fit keeps its replicates in percent
        analysis = analyze_run(planted.run, reference=reference, resamples=40)
        out = write_analysis(analysis, tmp_path / f"analysis-{reference}")
        doc = json.loads((out / "summary.json").read_text())
        table = duckdb.sql(f"select * from '{out / 'replicates.parquet'}'").df()
        assert len(table) == 40 * len(analysis.populations)
        for (scenario, depth), rows in table.groupby(["scenario", "depth"]):
            entry = doc[scenario][depth]
            assert sorted(rows["replicate"]) == list(range(40))
            for name in ("decay_constant", "intercept", "effectivity", "r2"):
                assert inverted_cdf(rows[name]) == tuple(entry[f"{name}_ci"])
            per = np.stack(rows["effectivity_per_injection"])
            assert per.shape[1] == len(entry["effectivity_per_injection"])
            for k, ci in enumerate(entry["effectivity_per_injection_ci"]):
                assert inverted_cdf(per[:, k]) == tuple(ci)
    # no resamples: a file without rows, so that no older analysis's replicates stay
    out = write_analysis(analyze_run(planted.run, resamples=0), tmp_path / "analysis-False")
    assert len(pd.read_parquet(out / "replicates.parquet")) == 0
    result = runner.invoke(app, sim_args(out))
    assert result.exit_code == 0, result.output
    assert "no bootstrap replicates (analysed with --resamples 0)" in result.output


def test_missing_or_damaged_replicates(tmp_path, exits_2):
    write_planted(tmp_path / "planted")
    folder = tmp_path / "planted"
    file = folder / "replicates.parquet"
    good = file.read_bytes()
    file.unlink()
    assert f"{file}: missing; rerun factdyn analyze" in exits_2(sim_args(folder))
    for damage in (good[: len(good) // 2], b"PAR1 not parquet"):
        file.write_bytes(damage)
        line = exits_2(sim_args(folder))
        assert f"{file}: damaged, cannot be read" in line
    file.write_bytes(good)
    pd.read_parquet(file).drop(columns="intercept").to_parquet(file)
    assert "damaged, cannot be read (no column intercept)" in exits_2(sim_args(folder))
    file.write_bytes(good)
    doc = json.loads((folder / "summary.json").read_text())
    doc["_settings"]["resamples"] = 1000  # the summary of another analysis
    (folder / "summary.json").write_text(json.dumps(doc))
    line = exits_2(sim_args(folder))
    assert f"{file}: duplicate/semantic: 400 replicates" in line and "rerun factdyn analyze" in line


def test_the_default_scenario_is_one_with_a_usable_fit(analysis_dir, tmp_path):
    _, out = analysis_dir
    assert "scenario: duplicate" in runner.invoke(app, sim_args(out)).output

    def no_duplicate_fit(doc):  # duplicate forgot nothing measurable: no threshold there
        for entry in doc["duplicate"].values():
            entry["decay_constant"] = -0.1

    bad = _doctored(out, tmp_path, no_duplicate_fit)
    result = runner.invoke(app, sim_args(bad))
    assert result.exit_code == 0, result.output
    assert "scenario: once" in result.output
