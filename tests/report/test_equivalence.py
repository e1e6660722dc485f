"""Equivalence as a verdict: an interval inside ± the claim's smallest effect of interest δ
contradicts the paper's direction as "no difference", kept apart from a reversal
(docs/method.md#smallest-effects-of-interest)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_findings import (
    B_EFF,
    B_TAU,
    DUP_FASTER,
    DUP_GAIN,
    NO,
    UNSURE,
    YES,
    edited,
    finding,
    paper_like,  # noqa: F401 (the fixture)
    planted_reps,
)

from factdyn.report.findings import Finding, compute_findings, findings_document
from factdyn.report.html import verdict_counts
from factdyn.report.tables import findings_list
from factdyn.report.verdicts import (
    DELTA_DECAY,
    DELTA_NATS,
    DELTA_RATIO,
    NO_DIFFERENCE,
    REVERSAL,
    Est,
    Tally,
    decide,
)


def planted(centre: float, half: float) -> Est:
    """An estimate at ``centre`` whose replicates spread evenly over centre ± half."""
    return Est(centre, np.linspace(centre - half, centre + half, 1001))


def decided(*ests: Est, delta: float | None = DELTA_NATS, threshold=0.0, above=True):
    t = Tally()
    for i, e in enumerate(ests):
        t.compare(f"q{i}", e, threshold, above, delta)
    return decide(t)


def test_the_deltas_are_fixed_by_the_ten_percent_principle():
    # stated before any run: a 10 % ratio, its log in nats, 10 % of the gain per decade
    assert DELTA_RATIO == 0.10 and DELTA_DECAY == 0.10
    assert math.isclose(DELTA_NATS, math.log(1.1))


@pytest.mark.parametrize(
    ("centre", "half", "verdict", "kind"),
    [
        (0.0, 0.05, NO, NO_DIFFERENCE),  # zero, tight: no difference
        (0.3, 0.05, YES, None),  # a planted difference beyond δ, the paper's side
        (0.0, 0.3, UNSURE, None),  # wide, straddling: undecided
        (-0.3, 0.05, NO, REVERSAL),  # the other side: a reversal
        (0.03, 0.02, YES, None),  # the paper's side, inside ±δ: the direction decides first
        (-0.03, 0.02, NO, REVERSAL),  # the other side, inside ±δ: still a reversal
        (0.05, 0.06, UNSURE, None),  # straddles, reaches past +δ: undecided
    ],
)
def test_the_rule_on_planted_estimates(centre, half, verdict, kind):
    o = decided(planted(centre, half))
    assert (o.verdict, o.kind, o.delta) == (verdict, kind, DELTA_NATS)
    if kind == NO_DIFFERENCE:
        assert "no difference (within ±0.0953)" in o.evidence
    assert ("opposite direction" in o.evidence) == (kind == REVERSAL)


def test_without_a_delta_a_tight_zero_stays_inconclusive():
    o = decided(planted(0.0, 0.01), delta=None)
    assert (o.verdict, o.kind, o.delta) == (UNSURE, None, None)


def test_delta_is_around_the_threshold_of_a_ratio():
    # a ratio the paper puts below 1: within 1 ± 10 % is no difference, below 0.9 reproduced
    assert decided(planted(1.02, 0.05), delta=DELTA_RATIO, threshold=1.0, above=False).kind == (
        NO_DIFFERENCE
    )
    assert decided(planted(0.7, 0.1), delta=DELTA_RATIO, threshold=1.0, above=False).verdict == YES
    o = decided(planted(1.3, 0.1), delta=DELTA_RATIO, threshold=1.0, above=False)
    assert (o.verdict, o.kind) == (NO, REVERSAL)


def test_combining_a_reversal_outweighs_a_no_difference():
    same, ahead = planted(0.0, 0.02), planted(0.5, 0.1)
    o = decided(ahead, same)  # any contradicted: contradicted, here by no difference
    assert (o.verdict, o.kind) == (NO, NO_DIFFERENCE)
    assert o.evidence.startswith("decided by q1")
    o = decided(planted(0.0, 0.3), same)  # an undecided one does not save it
    assert (o.verdict, o.kind) == (NO, NO_DIFFERENCE)
    o = decided(same, ahead, planted(-0.4, 0.1))
    assert (o.verdict, o.kind) == (NO, REVERSAL) and o.evidence.startswith("decided by q2")
    # among several no-difference comparisons the deepest inside ±δ decides
    o = decided(planted(-0.02, 0.07), same)
    assert o.interval == pytest.approx((-0.019, 0.019), abs=1e-3)


@pytest.mark.parametrize(
    ("dup", "verdict", "kind"),
    [
        ((0.54, 0.56), NO, NO_DIFFERENCE),  # duplicate = paraphrase, tight
        ((0.75, 0.85), YES, None),  # duplicate 0.25 above: beyond δ
        ((0.2, 0.9), UNSURE, None),  # wide
        ((0.2, 0.3), NO, REVERSAL),  # duplicate below
    ],
)
def test_a_finding_and_findings_json_keep_the_kind(paper_like, dup, verdict, kind):  # noqa: F811
    a = planted_reps(paper_like, "effectivity", 0.54, 0.56, scenario="paraphrase")
    a = planted_reps(a, "effectivity", 0.75, 0.85, scenario="duplicate")  # every depth ahead
    a = planted_reps(a, "effectivity", *dup, scenario="duplicate", depth="semantic")
    found = compute_findings([a])
    f = finding(found, DUP_GAIN)
    assert (f.verdict, f.kind, f.delta) == (verdict, kind, DELTA_NATS)
    doc = next(d for d in findings_document(found) if d["claim"] == f.claim)
    assert (doc["verdict"], doc["kind"], doc["delta"]) == (verdict, kind, DELTA_NATS)
    page = findings_list([f])
    assert ("no difference (within ±0.0953)" in page) == (kind == NO_DIFFERENCE)
    assert ("contradicted: opposite direction" in page) == (kind == REVERSAL)
    if kind == NO_DIFFERENCE:
        assert "duplicate − paraphrase effectivity, semantic" in f.evidence.split("; ")[0]


def test_the_decay_comparison_uses_its_own_delta(paper_like):  # noqa: F811
    a = planted_reps(paper_like, "decay_constant", 0.2, 0.24, scenario="paraphrase")
    a = planted_reps(a, "decay_constant", 0.2, 0.24, scenario="duplicate")
    f = finding(compute_findings([a]), DUP_FASTER)
    assert (f.verdict, f.kind, f.delta) == (NO, NO_DIFFERENCE, DELTA_DECAY)


def test_between_runs_no_difference(paper_like):  # noqa: F811
    # two runs alike but for the batch size in meta: every replicate of the difference is 0,
    # the ratio of thresholds exactly 1
    small, large = edited(paper_like, {"batch_size": 16}), edited(paper_like, {"batch_size": 128})
    found = compute_findings([small, large], ["small", "large"])
    f = finding(found, B_EFF)
    assert (f.verdict, f.kind, f.delta, f.interval) == (NO, NO_DIFFERENCE, DELTA_NATS, (0, 0))
    f = finding(found, B_TAU)
    assert (f.verdict, f.kind, f.delta) == (NO, NO_DIFFERENCE, DELTA_RATIO)


def test_the_pages_count_splits_the_contradicted_by_kind():
    def one(verdict, kind=None):
        return Finding("a claim", verdict, "evidence", "1", (0.0, 1.0), kind, None)

    found = [one(YES), one(NO, REVERSAL), one(NO, NO_DIFFERENCE), one(NO, NO_DIFFERENCE)]
    text = verdict_counts([*found, one(UNSURE)])
    assert "1 reproduced (✓), 3 contradicted (✗) (1 reversed, 2 no difference), " in text
    assert "1 inconclusive (?), 0 not testable" in text
    assert "reversed" not in verdict_counts([one(YES), one(UNSURE)])
