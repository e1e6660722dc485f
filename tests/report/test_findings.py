"""The SPEC §6 findings are computed: they follow the planted numbers, and flip with them."""

from __future__ import annotations

import dataclasses

import analyze_synth
import pytest
from report_synth import DECAY, planted

from factdyn.analyze.populations import analyze_run
from factdyn.analyze.result import Analysis
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


def finding(found: list[Finding], text: str) -> Finding:
    (match,) = [f for f in found if text in f.claim]
    assert match.evidence
    return match


def verdict(found: list[Finding], text: str) -> bool | None:
    return finding(found, text).reproduced


def edited(a: Analysis, run_info: dict | None = None, **config) -> Analysis:
    """A copy with config sections updated and RunInfo fields replaced."""
    sections = {k: {**a.config.get(k, {}), **v} for k, v in config.items()}
    info = dataclasses.replace(a.run_info, **(run_info or {}))
    return dataclasses.replace(a, config={**a.config, **sections}, run_info=info)


def scale(a: Analysis, field: str, factor: float, scenario=None, depth=None) -> Analysis:
    """A copy with ``field`` of the matching populations multiplied by ``factor``."""
    return dataclasses.replace(
        a,
        populations=tuple(
            dataclasses.replace(p, **{field: getattr(p, field) * factor})
            if scenario in (None, p.scenario) and depth in (None, p.depth)
            else p
            for p in a.populations
        ),
    )


@pytest.fixture(scope="module")
def paper_like() -> Analysis:
    return analyze_run(planted(n_controls=2))


def test_a_paper_like_run_reproduces_the_single_run_findings(paper_like):
    found = compute_findings([paper_like])
    for text in (ORDER, RAISES, DECAYS, DUP_FASTER, R2):
        assert verdict(found, text) is True, text
        assert finding(found, text).mark == "✓", text
    for text in (STAGE, SIZE, CONST_LR, B_EFF, B_DECAY, B_TAU, B_COMP):
        assert verdict(found, text) is None, text  # one run cannot test comparisons
        assert finding(found, text).mark == "–", text
    assert all(f.ref.startswith("6.") for f in found)


def test_depth_order_flips_when_composition_gains_most(monkeypatch):
    gains = {"memorization": 0.4, "semantic": 0.7, "composition": 1.0}
    monkeypatch.setattr(analyze_synth, "GAIN", gains)
    found = compute_findings([analyze_run(planted())])
    assert verdict(found, ORDER) is False and finding(found, ORDER).mark == "✗"
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


def with_semantic_share(a: Analysis, shares: dict[str, float]) -> Analysis:
    """A copy whose semantic effectivity is ``share`` × the memorization one, per scenario."""
    mem = {s: a.get(s, "memorization").effectivity for s in shares}
    return dataclasses.replace(
        a,
        populations=tuple(
            dataclasses.replace(p, effectivity=shares[p.scenario] * mem[p.scenario])
            if p.depth == "semantic" and p.scenario in shares
            else p
            for p in a.populations
        ),
    )


def test_duplicate_gain_and_memorization_semantic_gap_follow_the_summary(paper_like):
    a = scale(paper_like, "effectivity", 1.5, scenario="duplicate")
    assert verdict(compute_findings([a]), DUP_GAIN) is True
    a = scale(paper_like, "effectivity", 0.5, scenario="duplicate")
    assert verdict(compute_findings([a]), DUP_GAIN) is False
    a = with_semantic_share(paper_like, {"paraphrase": 0.97, "duplicate": 0.6})
    assert verdict(compute_findings([a]), GAP) is True
    a = with_semantic_share(paper_like, {"paraphrase": 0.6, "duplicate": 0.97})
    assert verdict(compute_findings([a]), GAP) is False


def test_composition_slowest_follows_the_decay_constants(paper_like):
    a = scale(paper_like, "decay_constant", 0.5, depth="composition")
    assert verdict(compute_findings([a]), COMP_SLOWEST) is True
    a = scale(paper_like, "decay_constant", 1.5, depth="composition")
    assert verdict(compute_findings([a]), COMP_SLOWEST) is False


def test_without_paraphrase_the_scenario_findings_are_not_testable():
    run = planted(schedules={"duplicate": [0, 30, 60], "once": [0]})
    found = compute_findings([analyze_run(run)])
    for text in (DUP_GAIN, DUP_FASTER, GAP):
        assert verdict(found, text) is None


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
        assert verdict(found, text) is True, text
    assert "batch 16 (bs16)" in finding(found, B_EFF).evidence
    found = compute_findings([edited(fast, {"batch_size": 128}), edited(slow, {"batch_size": 16})])
    for text in (B_EFF, B_DECAY):  # τ in tokens keeps each run's own tokens_per_step
        assert verdict(found, text) is False, text
    # composition hurt most: its threshold ratio small/large is the lowest of the depths
    low = scale(fast, "x_intercept_tokens", 0.2, depth="composition")
    assert verdict(compute_findings([low, slow]), B_COMP) is True
    high = scale(fast, "x_intercept_tokens", 100.0, depth="composition")
    assert verdict(compute_findings([high, slow]), B_COMP) is False


def test_without_batch_size_in_meta_the_batch_findings_are_not_testable(paper_like):
    assert paper_like.config["train"]["batch_size"] == 16  # in the config, not in meta
    old = edited(paper_like, {"batch_size": None})
    found = compute_findings([old, edited(paper_like, {"batch_size": 128})], ["old", "new"])
    for text in (B_EFF, B_DECAY, B_TAU, B_COMP):
        assert verdict(found, text) is None, text
        assert "meta.json has no batch_size for old" in finding(found, text).evidence


def test_model_size_comes_from_meta_never_from_the_name(monkeypatch):
    # cached base models are named by a hash: a name parse would read 7B for the small
    # model and 1B for the large one, and get the verdict backwards
    names = ("base-7b3f2a0c", "base-1b9e4d2f")
    large, small = _fast_and_slow(monkeypatch, n_parameters=(4_000_000, 1_000_000))
    small = edited(small, model={"name": names[0]})
    large = edited(large, model={"name": names[1]})
    found = compute_findings([large, small])  # larger gains in the larger model
    assert verdict(found, SIZE) is True and finding(found, SIZE).mark == "✓"
    assert "1e+06 parameters" in finding(found, SIZE).evidence
    swapped = [edited(small, {"n_parameters": 4_000_000}), edited(large, {"n_parameters": 10**6})]
    assert verdict(compute_findings(swapped), SIZE) is False
    unknown = edited(small, {"n_parameters": None})
    found = compute_findings([large, unknown], ["large", "hash-named"])
    assert verdict(found, SIZE) is None
    assert "meta.json has no n_parameters for hash-named" in finding(found, SIZE).evidence


def test_stage_findings_group_by_model_name_and_read_the_stage_from_meta(paper_like):
    optim = {"lr": 1e-4, "schedule": "constant"}
    model = {"name": "base-3f2b1b0e", "revision": None}  # no stage in the name or revision
    early = edited(paper_like, {"base_step": 1000}, model=model, optim=optim)
    late = edited(paper_like, {"base_step": 9000}, model=model, optim=optim)
    found = compute_findings([late, early])  # order of the runs does not matter
    assert verdict(found, STAGE) is True and verdict(found, CONST_LR) is True
    found = compute_findings([early, scale(late, "effectivity", 1.5)])
    assert verdict(found, STAGE) is False
    found = compute_findings([early, scale(late, "decay_constant", 0.5)])
    assert verdict(found, CONST_LR) is False
    late_lr = edited(late, optim={"lr": 1e-5})
    assert verdict(compute_findings([early, late_lr]), CONST_LR) is None
    other = edited(late, model={"name": "base-other"})  # another model: no stage series
    found = compute_findings([early, scale(other, "effectivity", 1.5)])
    assert verdict(found, STAGE) is None
    found = compute_findings([early, edited(late, {"base_step": None})], ["early", "late"])
    assert verdict(found, STAGE) is None
    assert "meta.json has no base_step for late" in finding(found, STAGE).evidence
