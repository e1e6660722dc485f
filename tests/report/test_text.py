"""The printed summary and the one number format shared by text, figures and the page."""

from __future__ import annotations

import dataclasses
import math
import re

from report_synth import planted

from factdyn.analyze.bootstrap import HIGH, LOW
from factdyn.analyze.populations import analyze_run
from factdyn.analyze.result import RunInfo
from factdyn.report.numbers import MISSING, fmt, fmt_interval
from factdyn.report.text import format_summary


def test_undefined_and_infinite_numbers_have_one_mark_each():
    assert [fmt(None), fmt(math.nan), fmt(math.inf), fmt(-math.inf)] == ["–", "–", "∞", "−∞"]
    assert MISSING == "–"
    assert (fmt(0.123456), fmt(3, ".4g"), fmt(-0.01234, "+.3f")) == ("0.123", "3", "-0.012")
    assert fmt_interval((0.0123, math.inf)) == "[0.0123, ∞]"
    assert fmt_interval((math.nan, math.nan)) == MISSING


def test_the_summary_prints_one_row_per_population_with_its_numbers():
    analysis = analyze_run(planted(n_controls=2))
    first = dataclasses.replace(
        analysis.populations[0], decay_constant=math.nan, x_intercept_steps=math.inf
    )
    analysis = dataclasses.replace(analysis, populations=(first, *analysis.populations[1:]))
    lines = format_summary(analysis).splitlines()
    rows = {tuple(cells[:2]): cells for cells in (re.split(r"\s{2,}", ln.strip()) for ln in lines)}

    def ci(interval):
        return f" [{interval[LOW]:.3g}, {interval[HIGH]:.3g}]"

    for p in analysis.populations:
        assert rows[(p.scenario, p.depth)][2:] == [
            f"{p.effectivity:.3g}" + ci(p.effectivity_ci),
            (MISSING if p is first else f"{p.decay_constant:.3g}") + ci(p.decay_constant_ci),
            f"{p.r2:.2f}" + ci(p.r2_ci),
            ("∞" if p is first else f"{p.x_intercept_steps:.3g}") + ci(p.x_intercept_steps_ci),
            f"{p.x_intercept_tokens:.3g}" + ci(p.x_intercept_tokens_ci),
            MISSING,  # the planted controls do not move: no noise floor, no SNR
            f"{p.n_probes}/{p.n_excluded}/{p.n_outliers}",
        ]
    assert len([r for r in rows if r[0] in analysis.scenarios()]) == len(analysis.populations)


def test_a_run_that_continues_the_base_at_another_batch_says_so_and_a_settled_one_does_not():
    """The batch the base's last updates had comes from the run's meta.json (its settling
    batch when it settled); a run without a tiny base (a hub model) says nothing."""
    run = planted(batch_size=4, n_controls=2)
    analysis = analyze_run(run)  # the numbers do not depend on the base: analysed once
    base = {"batch_size": 16, "settle_steps": 0, "settle_batch_size": 4}
    said = {}
    for name, state in {
        "switch": {"config": base},
        "settled": {"config": {**base, "settle_steps": 100}},
        "older base": {"config": {"batch_size": 16}},  # before settling existed
        "hub model": None,
        "moments not loaded": {"config": base},  # optim.load_state: false, or another trainer
    }.items():
        fresh = {"optim": {"load_state": False}} if name == "moments not loaded" else {}
        info = RunInfo.from_meta({**run.meta, "base_state": state, "config": fresh})
        text = format_summary(dataclasses.replace(analysis, run_info=info))
        said[name] = [ln for ln in text.splitlines() if ln.startswith("batch switch:")]
    want = "batch switch: 4 sequences per update, continuing a base whose last updates had 16"
    assert [ln[: len(want)] for ln in said["switch"]] == [want]
    assert said["older base"] == said["switch"]
    assert said["settled"] == said["hub model"] == said["moments not loaded"] == []
