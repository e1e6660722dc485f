"""The paper's findings are decided by bootstrap intervals: they follow the planted numbers
and replicates, and flip with them (docs/method.md, verdict rule)."""

from __future__ import annotations

import dataclasses
import json

import analyze_synth
import numpy as np
import pandas as pd
import pytest
from report_synth import DECAY, planted

from factdyn.analyze.bootstrap import HIGH, LOW
from factdyn.analyze.populations import analyze_run
from factdyn.analyze.result import Analysis
from factdyn.report.findings import Finding, compute_findings, findings_document
from factdyn.report.verdicts import Comparison, Est, Tally, decide

ORDER = "largest for memorization"
RAISES = "Every injection raises"
DECAYS = "ℓ decays"
DUP_GAIN = "larger immediate gains"
DUP_FASTER = "forgotten faster"
END = "similar levels"
GAP = "gap almost disappears"
R2 = "linear in log t"
COMP_SLOWEST = "Composition decays slowest"
STAGE = "pretraining stage"
SIZE = "model size"
CONST_LR = "equal constant learning rate"
B_EFF = "Smaller batches give higher effectivity"
B_DECAY = "Smaller batches give a larger decay"
B_TAU = "shorter learnability threshold"
B_COMP = "hurt composition most"
SINGLE_RUN = (RAISES, ORDER, DECAYS, DUP_GAIN, DUP_FASTER, END, GAP, R2, COMP_SLOWEST)
BETWEEN_RUNS = (STAGE, SIZE, CONST_LR, B_EFF, B_DECAY, B_TAU, B_COMP)

YES, NO, UNSURE, NA = "reproduced", "contradicted", "inconclusive", "not testable"
MARK = {YES: "✓", NO: "✗", UNSURE: "?", NA: "–"}
OLD = {YES: True, NO: False, UNSURE: None, NA: None}  # Finding.reproduced, for html.py


def finding(found: list[Finding], text: str) -> Finding:
    (match,) = [f for f in found if text in f.claim]
    assert match.evidence
    assert match.mark == MARK[match.verdict] and match.reproduced is OLD[match.verdict]
    assert (match.interval is None) == (match.verdict == NA)
    return match


def verdict(found: list[Finding], text: str) -> str:
    return finding(found, text).verdict


def edited(a: Analysis, run_info: dict | None = None, **config) -> Analysis:
    """A copy with config sections updated and RunInfo fields replaced."""
    sections = {k: {**a.config.get(k, {}), **v} for k, v in config.items()}
    info = dataclasses.replace(a.run_info, **(run_info or {}))
    return dataclasses.replace(a, config={**a.config, **sections}, run_info=info)


def replaced(a: Analysis, fn, scenario=None, depth=None) -> Analysis:
    """A copy whose matching populations are ``fn(population)`` (the rest unchanged)."""
    return dataclasses.replace(
        a,
        populations=tuple(
            fn(p) if scenario in (None, p.scenario) and depth in (None, p.depth) else p
            for p in a.populations
        ),
    )


def scale(a: Analysis, field: str, factor, scenario=None, depth=None) -> Analysis:
    """A copy with ``field`` of the matching populations, and its bootstrap replicates,
    multiplied by ``factor`` (a number, or one per replicate: the point gets their mean)."""

    def fn(p):
        reps = dataclasses.replace(p.replicates, **{field: getattr(p.replicates, field) * factor})
        point = getattr(p, field) * float(np.mean(factor))
        return dataclasses.replace(p, **{field: point, "replicates": reps})

    return replaced(a, fn, scenario, depth)


def planted_reps(a: Analysis, field: str, low: float, high: float, **where) -> Analysis:
    """A copy whose matching populations' ``field`` has its replicates spread evenly over
    [low, high] and their midpoint as the point estimate."""

    def fn(p):
        reps = np.linspace(low, high, len(p.replicates.r2))
        return dataclasses.replace(
            p,
            **{field: (low + high) / 2},
            replicates=dataclasses.replace(p.replicates, **{field: reps}),
        )

    return replaced(a, fn, **where)


@pytest.fixture(scope="module")
def paper_like() -> Analysis:
    return analyze_run(planted(n_controls=2))


# ---- the verdict rule on hand-made replicates ---------------------------------------------


def tally(*ranges: tuple[float, float], threshold: float = 0.0, above: bool = True) -> Tally:
    """A tally of one comparison per (low, high): replicates spread evenly over it."""
    t = Tally()
    for k, (lo, hi) in enumerate(ranges):
        e = Est((lo + hi) / 2, np.linspace(lo, hi, 1001))
        t.compare(f"q{k}", e, threshold, above)
    return t


@pytest.mark.parametrize(
    ("ranges", "expected"),
    [
        ([(0.05, 0.19)], YES),  # every replicate > 0
        ([(-0.3, -0.01)], NO),  # every replicate < 0
        ([(-0.1, 0.2)], UNSURE),  # straddles 0
        ([(0.1, 0.2), (0.3, 0.4)], YES),  # all reproduced
        ([(0.1, 0.2), (-0.1, 0.2)], UNSURE),  # one inconclusive, none contradicted
        ([(0.1, 0.2), (-0.1, 0.2), (-0.5, -0.2)], NO),  # any contradicted
        ([], NA),
    ],
)
def test_the_verdict_rule_on_planted_replicates(ranges, expected):
    o = decide(tally(*ranges), "no runs")
    assert o.verdict == expected
    if expected == NA:
        assert o.interval is None and o.evidence == "no runs"
        return
    lo, hi = o.interval
    # deciding interval: the contradicted one; else the weakest (lowest lower bound)
    deciding = min(ranges, key=lambda r: r[1] if expected == NO else r[0])
    width = (deciding[1] - deciding[0]) * 0.025
    assert lo == pytest.approx(deciding[0] + width, abs=1e-3 * width + 1e-12)
    assert hi == pytest.approx(deciding[1] - width, abs=1e-3 * width + 1e-12)
    assert f"{lo:.3g}" in o.evidence and f"{hi:.3g}" in o.evidence


def test_intervals_are_inverted_cdf_percentiles_at_95_percent():
    e = Est(500.0, np.arange(1.0, 1001.0))  # the 2.5 % and 97.5 % order statistics
    assert e.interval() == (25.0, 975.0)
    assert Est(0.0, np.array([np.nan, *range(1, 1001)])).interval() == (25.0, 975.0)


def test_thresholds_are_decided_by_the_interval_not_the_point():
    # point 0.81 > 0.8, but the interval reaches below: inconclusive, not reproduced
    t = Tally()
    t.compare("R²", Est(0.81, np.linspace(0.7, 0.92, 1001)), 0.8)
    assert decide(t).verdict == UNSURE
    assert decide(tally((0.5, 1.0), threshold=1.1, above=False)).verdict == YES  # ≤ 1.1
    assert decide(tally((1.2, 1.5), threshold=1.1, above=False)).verdict == NO
    # "excludes" is strict: an interval that reaches the threshold does not exclude it
    assert Comparison("q", 0.1, (0.0, 0.2)).verdict == UNSURE
    assert Comparison("q", -0.1, (-0.2, 0.0)).verdict == UNSURE


def test_r2_against_each_depths_floor(paper_like):
    a = planted_reps(paper_like, "r2", 0.85, 0.95)
    assert verdict(compute_findings([a]), R2) == YES
    # composition's floor is 0.65: 0.7–0.75 passes there, fails for memorization
    a = planted_reps(a, "r2", 0.7, 0.75, depth="composition")
    assert verdict(compute_findings([a]), R2) == YES
    low = planted_reps(a, "r2", 0.7, 0.75, scenario="once", depth="memorization")
    f = finding(compute_findings([low]), R2)
    assert f.verdict == NO and f.interval[HIGH] < 0.8
    assert "R², once/memorization" in f.evidence.split("; ")[0]
    straddle = planted_reps(a, "r2", 0.75, 0.85, scenario="once", depth="semantic")
    assert verdict(compute_findings([straddle]), R2) == UNSURE


def test_a_difference_between_scenarios_is_decided_by_its_interval(paper_like):
    a = planted_reps(paper_like, "effectivity", 0.5, 0.6, scenario="paraphrase")
    gain = planted_reps(a, "effectivity", 0.7, 0.8, scenario="duplicate")
    f = finding(compute_findings([gain]), DUP_GAIN)
    assert f.verdict == YES
    assert 0.1 < f.interval[LOW] < f.interval[HIGH] < 0.3  # duplicate − paraphrase: 0.1 … 0.3
    assert "duplicate − paraphrase effectivity" in f.evidence
    loss = planted_reps(a, "effectivity", 0.3, 0.4, scenario="duplicate")
    assert verdict(compute_findings([loss]), DUP_GAIN) == NO
    # an interval reaching past ±δ on both sides (a narrow one inside is "no difference":
    # tests/report/test_equivalence.py)
    overlap = planted_reps(a, "effectivity", 0.3, 0.9, scenario="duplicate")
    assert verdict(compute_findings([overlap]), DUP_GAIN) == UNSURE
    # several depths: one inconclusive → inconclusive; one contradicted → contradicted
    one = planted_reps(gain, "effectivity", 0.3, 0.9, scenario="duplicate", depth="semantic")
    assert verdict(compute_findings([one]), DUP_GAIN) == UNSURE
    two = planted_reps(one, "effectivity", 0.1, 0.2, scenario="duplicate", depth="composition")
    f = finding(compute_findings([two]), DUP_GAIN)
    assert f.verdict == NO and "composition" in f.evidence.split("; ")[0]


def test_each_injection_is_decided_by_its_own_replicates(paper_like):
    assert verdict(compute_findings([paper_like]), RAISES) == YES

    def injection(p, lo, hi):
        r = p.replicates
        each = r.effectivity_per_injection.copy()
        each[:, 1] = np.linspace(lo, hi, len(each))
        return dataclasses.replace(
            p, replicates=dataclasses.replace(r, effectivity_per_injection=each)
        )

    where = {"scenario": "duplicate", "depth": "semantic"}
    a = replaced(paper_like, lambda p: injection(p, -0.2, 0.3), **where)
    assert verdict(compute_findings([a]), RAISES) == UNSURE
    a = replaced(paper_like, lambda p: injection(p, -0.3, -0.1), **where)
    f = finding(compute_findings([a]), RAISES)
    assert f.verdict == NO and "injection 2, duplicate/semantic" in f.evidence


def test_without_replicates_nothing_is_testable(paper_like):
    bare = analyze_run(planted(n_controls=2), resamples=0)
    found = compute_findings([bare])
    for text in SINGLE_RUN:
        assert verdict(found, text) == NA, text
        assert "no bootstrap replicates" in finding(found, text).evidence
    # a second run with replicates is tested alone, labelled
    found = compute_findings([bare, paper_like], ["bare", "full"])
    f = finding(found, DECAYS)
    assert f.verdict == YES and "[full] a, " in f.evidence and "[bare] no bootstrap" in f.evidence


def test_findings_document_is_strict_json(paper_like):
    def unbounded(p):  # a few replicates at −∞: an infinite lower bound
        eff = p.replicates.effectivity.copy()
        eff[:10] = -np.inf
        return dataclasses.replace(p, replicates=dataclasses.replace(p.replicates, effectivity=eff))

    found = compute_findings([replaced(paper_like, unbounded, "once", "memorization")])
    assert finding(found, ORDER).interval[LOW] == -np.inf
    doc = findings_document(found)
    json.dumps(doc, allow_nan=False)
    assert len(doc) == 16 and {d["verdict"] for d in doc} <= {YES, NO, UNSURE, NA}
    assert {d["verdict"] for d in doc} >= {YES, NA}
    for d, f in zip(doc, found, strict=True):
        assert set(d) == {"claim", "ref", "verdict", "interval", "kind", "delta", "evidence"}
        assert d["claim"] == f.claim and d["verdict"] == f.verdict
        assert d["kind"] == f.kind and d["delta"] == f.delta
        assert (d["kind"] is None) == (d["verdict"] != NO)
        if f.interval is None:
            assert d["interval"] is None
        else:
            assert d["interval"] == [v if np.isfinite(v) else None for v in f.interval]


# ---- §6.2 end levels: the trajectories' per-step intervals --------------------------------


def with_gap(a: Analysis, end_gap: float, half_width: float) -> Analysis:
    """Trajectories where duplicate − paraphrase mean Δℓ peaks at 1.0 and ends at
    ``end_gap``, each scenario's per-step interval ± ``half_width``."""
    steps = np.arange(10, 110, 10)
    gap = np.linspace(1.0, end_gap, len(steps))
    rows = []
    for d in ("memorization", "semantic", "composition"):
        for s, delta in (("paraphrase", np.full(len(steps), 0.5)), ("duplicate", 0.5 + gap)):
            rows.append(pd.DataFrame({"step": steps, "scenario": s, "depth": d, "delta": delta}))
    traj = pd.concat(rows, ignore_index=True)
    traj["ci_low"], traj["ci_high"] = traj["delta"] - half_width, traj["delta"] + half_width
    return dataclasses.replace(a, trajectories=traj)


def test_end_levels_by_the_interval_of_the_last_gap(paper_like):
    # threshold 0.5 × largest gap 1.0; the end gap's interval is ± √2 × half_width
    f = finding(compute_findings([with_gap(paper_like, 0.1, 0.05)]), END)
    assert f.verdict == YES
    assert f.interval == pytest.approx((0.1 - 0.05 * 2**0.5, 0.1 + 0.05 * 2**0.5))
    assert "normal approximation" in f.evidence and "point estimate" in f.evidence
    assert verdict(compute_findings([with_gap(paper_like, 0.8, 0.05)]), END) == NO
    assert verdict(compute_findings([with_gap(paper_like, 0.45, 0.1)]), END) == UNSURE
    f = finding(compute_findings([with_gap(paper_like, -0.05, 0.1)]), END)  # |gap| from 0
    assert f.verdict == YES and f.interval[LOW] == 0.0


# ---- the single-run findings on planted runs ----------------------------------------------


def test_a_paper_like_run_reproduces_the_single_run_findings(paper_like):
    found = compute_findings([paper_like])
    for text in (ORDER, RAISES, DECAYS, DUP_FASTER, R2):
        assert verdict(found, text) == YES, text
        assert finding(found, text).mark == "✓", text
    for text in BETWEEN_RUNS:
        assert verdict(found, text) == NA, text  # one run cannot test comparisons
        assert finding(found, text).mark == "–", text
    assert {f.ref for f in found} <= {"1", "2", "2, 4", "3", "4", "5"}


def test_depth_order_flips_when_composition_gains_most(monkeypatch):
    gains = {"memorization": 0.4, "semantic": 0.7, "composition": 1.0}
    monkeypatch.setattr(analyze_synth, "GAIN", gains)
    found = compute_findings([analyze_run(planted())])
    assert verdict(found, ORDER) == NO and finding(found, ORDER).mark == "✗"
    assert verdict(found, RAISES) == YES


def test_a_falling_depth_breaks_every_injection_raises(monkeypatch):
    gains = {"memorization": 1.0, "semantic": 0.7, "composition": -0.5}
    monkeypatch.setattr(analyze_synth, "GAIN", gains)
    found = compute_findings([analyze_run(planted())])
    assert verdict(found, RAISES) == NO
    assert verdict(found, ORDER) == YES  # a negative composition gain is still the smallest


def test_duplicate_forgotten_faster_flips_with_the_planted_decay():
    swapped = {**DECAY, "paraphrase": DECAY["duplicate"], "duplicate": DECAY["paraphrase"]}
    found = compute_findings([analyze_run(planted(decay=swapped))])
    assert verdict(found, DUP_FASTER) == NO
    assert verdict(found, DECAYS) == YES


def test_power_law_fit_quality_fails_on_noisy_forgetting():
    found = compute_findings([analyze_run(planted(noise=1.0))])
    assert verdict(found, R2) in (NO, UNSURE)
    assert finding(found, R2).interval[LOW] < 0.8


def with_semantic_share(a: Analysis, shares: dict[str, float]) -> Analysis:
    """A copy whose semantic effectivity (and each replicate) is ``share`` × the memorization
    one, per scenario: (E_mem − E_sem)/E_mem is 1 − share in every replicate."""

    def fn(p):
        mem = a.get(p.scenario, "memorization")
        share = shares[p.scenario]
        reps = dataclasses.replace(p.replicates, effectivity=share * mem.replicates.effectivity)
        return dataclasses.replace(p, effectivity=share * mem.effectivity, replicates=reps)

    return dataclasses.replace(
        a,
        populations=tuple(
            fn(p) if p.depth == "semantic" and p.scenario in shares else p for p in a.populations
        ),
    )


def test_duplicate_gain_and_memorization_semantic_gap_follow_the_replicates(paper_like):
    a = scale(paper_like, "effectivity", 1.5, scenario="duplicate")
    assert verdict(compute_findings([a]), DUP_GAIN) == YES
    a = scale(paper_like, "effectivity", 0.5, scenario="duplicate")
    assert verdict(compute_findings([a]), DUP_GAIN) == NO
    a = with_semantic_share(paper_like, {"paraphrase": 0.97, "duplicate": 0.6})
    f = finding(compute_findings([a]), GAP)  # ½ × 0.4 − 0.03 in every replicate
    assert f.verdict == YES and f.interval == pytest.approx((0.17, 0.17))
    a = with_semantic_share(paper_like, {"paraphrase": 0.6, "duplicate": 0.97})
    assert verdict(compute_findings([a]), GAP) == NO


def test_composition_slowest_follows_the_decay_constants(paper_like):
    a = scale(paper_like, "decay_constant", 0.5, depth="composition")
    assert verdict(compute_findings([a]), COMP_SLOWEST) == YES
    a = scale(paper_like, "decay_constant", 1.5, depth="composition")
    assert verdict(compute_findings([a]), COMP_SLOWEST) == NO


def test_without_paraphrase_the_scenario_findings_are_not_testable():
    run = planted(schedules={"duplicate": [0, 30, 60], "once": [0]})
    found = compute_findings([analyze_run(run)])
    for text in (DUP_GAIN, DUP_FASTER, END, GAP):
        assert verdict(found, text) == NA
        assert "needs 'paraphrase' and 'duplicate'" in finding(found, text).evidence


# ---- the findings between runs -------------------------------------------------------------


def _fast_and_slow(monkeypatch, **meta) -> tuple[Analysis, Analysis]:
    """'fast': larger gains, faster forgetting; 'slow': the opposite (planted). ``meta``:
    meta.json fields of each run, as (fast, slow) pairs."""

    def run(decay, seed, side):
        r = planted(decay={s: decay for s in DECAY}, seed=seed)
        r.meta.update({k: v[side] for k, v in meta.items()})
        return analyze_run(r)

    slow = run((0.15, 0.9), 0, 1)
    monkeypatch.setattr(analyze_synth, "GAIN", {k: 1.5 * v for k, v in analyze_synth.GAIN.items()})
    return run((0.3, 0.9), 1, 0), slow


def test_batch_size_findings_follow_the_batch_size_in_meta(monkeypatch):
    # the config says otherwise: only meta.json's batch_size (sequences) counts
    fast, slow = _fast_and_slow(monkeypatch, batch_size=(16, 128), tokens_per_step=(1000, 8000))
    found = compute_findings([fast, slow], ["bs16", "bs128"])
    for text in (B_EFF, B_DECAY, B_TAU):
        assert verdict(found, text) == YES, text
    assert "batch 16 (bs16) − batch 128 (bs128)" in finding(found, B_EFF).evidence
    found = compute_findings([edited(fast, {"batch_size": 128}), edited(slow, {"batch_size": 16})])
    for text in (B_EFF, B_DECAY):  # τ in tokens keeps each run's own tokens_per_step
        assert verdict(found, text) == NO, text
    # composition hurt most: its threshold ratio small/large is the lowest of the depths
    low = scale(fast, "x_intercept_tokens", 0.2, depth="composition")
    assert verdict(compute_findings([low, slow]), B_COMP) == YES
    high = scale(fast, "x_intercept_tokens", 100.0, depth="composition")
    assert verdict(compute_findings([high, slow]), B_COMP) == NO


def test_without_batch_size_in_meta_the_batch_findings_are_not_testable(paper_like):
    assert paper_like.config["train"]["batch_size"] == 16  # in the config, not in meta
    old = edited(paper_like, {"batch_size": None})
    found = compute_findings([old, edited(paper_like, {"batch_size": 128})], ["old", "new"])
    for text in (B_EFF, B_DECAY, B_TAU, B_COMP):
        assert verdict(found, text) == NA, text
        assert "meta.json has no batch_size for old" in finding(found, text).evidence


def test_model_size_comes_from_meta_never_from_the_name(monkeypatch):
    # cached base models are named by a hash: a name parse would read 7B for the small
    # model and 1B for the large one, and get the verdict backwards
    names = ("base-7b3f2a0c", "base-1b9e4d2f")
    large, small = _fast_and_slow(monkeypatch, n_parameters=(4_000_000, 1_000_000))
    small = edited(small, model={"name": names[0]})
    large = edited(large, model={"name": names[1]})
    found = compute_findings([large, small])  # larger gains in the larger model
    assert verdict(found, SIZE) == YES and finding(found, SIZE).mark == "✓"
    assert "4e+06 − 1e+06 parameters" in finding(found, SIZE).evidence
    swapped = [edited(small, {"n_parameters": 4_000_000}), edited(large, {"n_parameters": 10**6})]
    assert verdict(compute_findings(swapped), SIZE) == NO
    unknown = edited(small, {"n_parameters": None})
    found = compute_findings([large, unknown], ["large", "hash-named"])
    assert verdict(found, SIZE) == NA
    assert "meta.json has no n_parameters for hash-named" in finding(found, SIZE).evidence


def test_stage_findings_group_by_model_name_and_read_the_stage_from_meta(paper_like):
    optim = {"lr": 1e-4, "schedule": "constant"}
    model = {"name": "base-3f2b1b0e", "revision": None}  # no stage in the name or revision
    early = edited(paper_like, {"base_step": 1000}, model=model, optim=optim)
    late = edited(paper_like, {"base_step": 9000}, model=model, optim=optim)
    # the same replicates: latest − 1.1 × earliest = −0.1 × E, latest − 0.9 × a = 0.1 × a
    found = compute_findings([late, early])  # order of the runs does not matter
    assert verdict(found, STAGE) == YES and verdict(found, CONST_LR) == YES
    e = paper_like.get("paraphrase", "memorization").effectivity
    assert finding(found, STAGE).interval[1] < 0 < e
    found = compute_findings([early, scale(late, "effectivity", 1.5)])
    assert verdict(found, STAGE) == NO
    # latest = (1.1 ± 0.2) × earliest, half the replicates each way: inconclusive
    jitter = np.where(np.arange(len(paper_like.populations[0].replicates.r2)) % 2, 1.3, 0.9)
    found = compute_findings([early, scale(late, "effectivity", jitter)])
    assert verdict(found, STAGE) == UNSURE
    found = compute_findings([early, scale(late, "decay_constant", 0.5)])
    assert verdict(found, CONST_LR) == NO
    late_lr = edited(late, optim={"lr": 1e-5})
    assert verdict(compute_findings([early, late_lr]), CONST_LR) == NA
    other = edited(late, model={"name": "base-other"})  # another model: no stage series
    found = compute_findings([early, scale(other, "effectivity", 1.5)])
    assert verdict(found, STAGE) == NA
    found = compute_findings([early, edited(late, {"base_step": None})], ["early", "late"])
    assert verdict(found, STAGE) == NA
    assert "meta.json has no base_step for late" in finding(found, STAGE).evidence


def test_a_grid_of_stages_compares_each_stage_group_with_its_own_kind(paper_like):
    """The planted grid of `factdyn reproduce`: one tiny lineage at steps 150 / 600 at their
    own lr (lr taken from the checkpoint) and at one equal constant lr, a batch-32 run and a
    smaller model at the last stage. Stage effectivity must compare the own-lr runs only,
    the decay control the equal-lr runs (with the reference, whose lr is the same) only."""
    lineage = {"model_lineage": "base-1234"}
    own = {"lr": None, "schedule": "constant"}
    equal = {"lr": 1e-3, "schedule": "constant"}

    def run(step, lr_first, optim, batch=4, size=10**6, eff=1.0, decay=1.0):
        info = {**lineage, "base_step": step, "lr_first": lr_first, "batch_size": batch,
                "n_parameters": size}  # fmt: skip
        a = edited(paper_like, info, optim=optim)
        return scale(scale(a, "effectivity", eff), "decay_constant", decay)

    # planted: the early stage learns 3× more at its own (high) lr, so "does not improve"
    # holds; at equal lr the late stage decays 2× faster, so "does not drop" holds. The
    # batch-32 and small runs at step 600 carry opposite effects that must not be read.
    ref = run(600, 1e-3, own)
    early = run(150, 3.7e-3, own, eff=3.0)
    early_eq = run(150, 1e-3, equal, decay=0.5)
    batch32 = run(600, 1e-3, own, batch=32, eff=10.0, decay=0.1)
    small = run(600, 1e-3, own, size=2 * 10**5, eff=10.0, decay=0.1)
    labels = ["reference", "quarter", "quarter-lr", "batch32", "small"]
    found = compute_findings([ref, early, early_eq, batch32, small], labels, single=[0])
    stage, const = finding(found, STAGE), finding(found, CONST_LR)
    assert stage.verdict == YES and "reference (step 600)" in stage.evidence
    assert "quarter (step 150)" in stage.evidence and "batch32" not in stage.evidence
    assert const.verdict == YES and "quarter-lr (step 150)" in const.evidence
    assert "reference (step 600)" in const.evidence and "small" not in const.evidence
    # swap the planted effects: the verdicts follow
    found = compute_findings(
        [ref, run(150, 3.7e-3, own, eff=0.3), run(150, 1e-3, equal, decay=2.0), batch32, small],
        labels,
    )
    assert finding(found, STAGE).verdict == NO and finding(found, CONST_LR).verdict == NO
