"""The SPEC §6 findings are computed: they follow the planted numbers, and flip with them."""

from __future__ import annotations

import copy
import dataclasses

import analyze_synth
import pytest
from report_synth import DECAY, planted

from factdyn.analyze.pipeline import Analysis, analyze_run
from factdyn.report.findings import Finding, compute_findings

ORDER = "largest for memorization"
RAISES = "Every injection raises"
DECAYS = "ℓ decays"
DUP_GAIN = "larger immediate gains"
DUP_FASTER = "forgotten faster"
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


def verdict(found: list[Finding], text: str) -> bool | None:
    (match,) = [f for f in found if text in f.claim]
    assert match.evidence
    return match.reproduced


def edited(a: Analysis, **config) -> Analysis:
    """A copy whose summary and config can be changed freely."""
    b = dataclasses.replace(a, summary=copy.deepcopy(a.summary), config=copy.deepcopy(a.config))
    for section, values in config.items():
        b.config.setdefault(section, {}).update(values)
    return b


def scale(a: Analysis, key: str, factor: float, scenario=None, depth=None) -> Analysis:
    for s, by_depth in a.summary.items():
        for d, e in by_depth.items():
            if scenario in (None, s) and depth in (None, d):
                e[key] *= factor
    return a


@pytest.fixture(scope="module")
def paper_like() -> Analysis:
    return analyze_run(planted(n_controls=2))


def test_a_paper_like_run_reproduces_the_single_run_findings(paper_like):
    found = compute_findings([paper_like])
    for text in (ORDER, RAISES, DECAYS, DUP_FASTER, R2):
        assert verdict(found, text) is True, text
    for text in (STAGE, SIZE, CONST_LR, B_EFF, B_DECAY, B_TAU, B_COMP):
        assert verdict(found, text) is None, text  # one run cannot test comparisons
    assert all(f.mark in "✓✗–" and f.ref.startswith("6.") for f in found)


def test_depth_order_flips_when_composition_gains_most(monkeypatch):
    gains = {"memorization": 0.4, "semantic": 0.7, "composition": 1.0}
    monkeypatch.setattr(analyze_synth, "GAIN", gains)
    found = compute_findings([analyze_run(planted())])
    assert verdict(found, ORDER) is False
    assert verdict(found, RAISES) is True


def test_a_falling_depth_breaks_every_injection_raises(monkeypatch):
    gains = {"memorization": 1.0, "semantic": 0.7, "composition": -0.5}
    monkeypatch.setattr(analyze_synth, "GAIN", gains)
    found = compute_findings([analyze_run(planted())])
    assert verdict(found, RAISES) is False
    assert verdict(found, ORDER) is True  # a negative composition gain is still the smallest


def test_duplicate_forgotten_faster_flips_with_the_planted_decay():
    swapped = {**DECAY, "paraphrase": DECAY["duplicate"], "duplicate": DECAY["paraphrase"]}
    found = compute_findings([analyze_run(planted(decay=swapped))])
    assert verdict(found, DUP_FASTER) is False
    assert verdict(found, DECAYS) is True


def test_power_law_fit_quality_fails_on_noisy_forgetting():
    found = compute_findings([analyze_run(planted(noise=1.0))])
    assert verdict(found, R2) is False


def test_duplicate_gain_and_memorization_semantic_gap_follow_the_summary(paper_like):
    a = scale(edited(paper_like), "effectivity", 1.5, scenario="duplicate")
    assert verdict(compute_findings([a]), DUP_GAIN) is True
    a = scale(edited(paper_like), "effectivity", 0.5, scenario="duplicate")
    assert verdict(compute_findings([a]), DUP_GAIN) is False
    a = edited(paper_like)
    for s, ratio in (("paraphrase", 0.97), ("duplicate", 0.6)):
        a.summary[s]["semantic"]["effectivity"] = (
            ratio * a.summary[s]["memorization"]["effectivity"]
        )
    assert verdict(compute_findings([a]), GAP) is True
    for s, ratio in (("paraphrase", 0.6), ("duplicate", 0.97)):
        a.summary[s]["semantic"]["effectivity"] = (
            ratio * a.summary[s]["memorization"]["effectivity"]
        )
    assert verdict(compute_findings([a]), GAP) is False


def test_composition_slowest_follows_the_decay_constants(paper_like):
    a = scale(edited(paper_like), "decay_constant", 0.5, depth="composition")
    assert verdict(compute_findings([a]), COMP_SLOWEST) is True
    a = scale(edited(paper_like), "decay_constant", 1.5, depth="composition")
    assert verdict(compute_findings([a]), COMP_SLOWEST) is False


def test_without_paraphrase_the_scenario_findings_are_not_testable():
    run = planted(schedules={"duplicate": [0, 30, 60], "once": [0]})
    found = compute_findings([analyze_run(run)])
    for text in (DUP_GAIN, DUP_FASTER, GAP):
        assert verdict(found, text) is None


def _fast_and_slow(monkeypatch) -> tuple[Analysis, Analysis]:
    """'fast': larger gains, faster forgetting; 'slow': the opposite (planted)."""
    fast_decay = {s: (0.3, 0.9) for s in DECAY}
    slow_decay = {s: (0.15, 0.9) for s in DECAY}
    slow = analyze_run(planted(decay=slow_decay))
    monkeypatch.setattr(analyze_synth, "GAIN", {k: 1.5 * v for k, v in analyze_synth.GAIN.items()})
    fast = analyze_run(planted(decay=fast_decay, seed=1))
    return fast, slow


def with_batch(a: Analysis, batch: int, tokens_per_step: int) -> Analysis:
    b = edited(a, train={"batch_size": batch})
    b.meta = {**a.meta, "tokens_per_step": tokens_per_step}
    for by_depth in b.summary.values():
        for e in by_depth.values():
            e["x_intercept_tokens"] = e["x_intercept_steps"] * tokens_per_step
    return b


def test_batch_size_findings_flip_when_the_runs_swap_batch_sizes(monkeypatch):
    fast, slow = _fast_and_slow(monkeypatch)
    paper = [with_batch(fast, 16, 1000), with_batch(slow, 128, 8000)]
    found = compute_findings(paper, ["bs16", "bs128"])
    for text in (B_EFF, B_DECAY, B_TAU):
        assert verdict(found, text) is True, text
    swapped = [with_batch(fast, 128, 8000), with_batch(slow, 16, 1000)]
    found = compute_findings(swapped, ["bs128", "bs16"])
    for text in (B_EFF, B_DECAY, B_TAU):
        assert verdict(found, text) is False, text
    # composition hurt most: its threshold ratio small/large is the lowest of the depths
    small, large = paper
    scale(small, "x_intercept_tokens", 0.2, depth="composition")
    assert verdict(compute_findings([small, large]), B_COMP) is True
    scale(small, "x_intercept_tokens", 100.0, depth="composition")
    assert verdict(compute_findings([small, large]), B_COMP) is False


def test_model_size_and_stage_findings_follow_the_runs(paper_like):
    one_b = edited(paper_like, model={"name": "org/Model-1B", "revision": "step1000-tokens4B"})
    seven_b = edited(paper_like, model={"name": "org/Model-7B", "revision": "step1000-tokens4B"})
    assert verdict(compute_findings([one_b, scale(seven_b, "effectivity", 2.0)]), SIZE) is True
    assert verdict(compute_findings([one_b, scale(seven_b, "effectivity", 0.25)]), SIZE) is False

    optim = {"lr": 1e-4, "schedule": "constant"}
    early = edited(paper_like, model={"name": "org/M-1B", "revision": "step1000"}, optim=optim)
    late = edited(paper_like, model={"name": "org/M-1B", "revision": "step9000"}, optim=optim)
    found = compute_findings([late, early])  # order of the runs does not matter
    assert verdict(found, STAGE) is True and verdict(found, CONST_LR) is True
    found = compute_findings([early, scale(edited(late), "effectivity", 1.5)])
    assert verdict(found, STAGE) is False
    found = compute_findings([early, scale(edited(late), "decay_constant", 0.5)])
    assert verdict(found, CONST_LR) is False
    late_lr = edited(late, optim={"lr": 1e-5})
    assert verdict(compute_findings([early, late_lr]), CONST_LR) is None
