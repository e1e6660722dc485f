"""The item explorer's data: each item's series, LAMs, gains and IQR removals, checked against
the run's own arrays and planted values; the thinning of long logs; the paragraphs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from report_synth import planted_run

from factdyn.analyze.populations import analyze_run
from factdyn.data.items import DEPTHS, KnowledgeItem, Probe, save_items
from factdyn.report.explorer import build, paragraphs, thin
from factdyn.report.explorer_page import section

SCHEDULE = [0, 30, 60]
WINDOW = 10


@pytest.fixture(scope="module")
def planted():
    """One scenario, no controls (so no drift correction: ℓ as logged is what is analysed),
    probe 0 of every item with a 30× first gain (an outlier the IQR filter removes)."""
    run = planted_run(
        schedules={"duplicate": SCHEDULE}, items_per_scenario=5, probes_per_depth=5,
        total=200, window=WINDOW, effect_outliers=1, seed=5,
    ).run  # fmt: skip
    return run, analyze_run(run, resamples=0)


def test_each_items_series_lams_and_gains_are_the_runs(planted):
    run, analysis = planted
    data = build(run, analysis, "planted")
    ell = run.logprobs[:, :, 0].astype(np.float64)
    assert [it.item for it in data.items] == sorted(run.probes["item"].unique().tolist())
    for it in data.items:
        assert it.scenario == "duplicate" and it.injections == SCHEDULE
        assert it.steps == run.steps.tolist()  # 201 steps: under the cap, none thinned
        assert list(it.depths) == list(DEPTHS)
        for depth, view in it.depths.items():
            rows = run.probes[(run.probes["item"] == it.item) & (run.probes["depth"] == depth)]
            assert [p.probe for p in view.probes] == rows["probe"].tolist()
            gains = []
            for p, col in zip(view.probes, rows.index, strict=True):
                np.testing.assert_allclose(p.y, ell[:, col], rtol=5e-4)  # 4 digits
                # t_LAM: the first maximum of ℓ in (t_i, t_i + t_w], found here from the log
                lam = [t + 1 + int(np.argmax(ell[t + 1 : t + WINDOW + 1, col])) for t in SCHEDULE]
                assert p.lam == lam
                gain = [ell[m, col] - ell[t, col] for m, t in zip(lam, SCHEDULE, strict=True)]
                np.testing.assert_allclose(p.gain, gain, rtol=5e-4)
                assert p.gain_outliers == (p.probe == 0)  # the planted outlier, and only it
                assert not p.excluded
                gains += gain
            assert view.effectivity == pytest.approx(np.mean(gains), rel=5e-4)
            assert view.gain_outliers == 1 and view.gains == len(gains)
            assert view.retainability_outliers == sum(p.retainability_outliers for p in view.probes)
            r = [p.retainability for p in view.probes]
            assert view.retainability == pytest.approx(np.mean(r), rel=1e-3)


def test_the_retainability_shown_is_the_analysis_per_probe_value(planted):
    run, analysis = planted
    table = analysis.per_probe.set_index("probe_id")
    data = build(run, analysis, "planted")
    for it in data.items:
        for depth, view in it.depths.items():
            ids = run.probes[(run.probes["item"] == it.item) & (run.probes["depth"] == depth)]
            for p, pid in zip(view.probes, ids["probe_id"], strict=True):
                assert p.retainability == pytest.approx(table.loc[pid, "retainability"], rel=5e-4)
                assert p.retainability_t == table.loc[pid, "retainability_t"] > 0
                n_out = table.loc[pid, "n_retainability_outliers"]
                assert p.retainability_outliers == n_out


def test_a_long_log_is_thinned_keeping_injections_and_lams():
    steps = np.arange(3000)
    inj = np.array([0, 100, 200])
    keep = np.array([0, 1, 100, 101, 200, 201, 7, 143, 2999])
    mask = thin(steps, inj, keep, 300)
    assert 250 <= mask.sum() <= 300
    assert mask[keep].all() and mask[[0, -1]].all()
    drawn = steps[mask]
    # dense just after each injection, sparse along the tail
    assert set(range(200, 215)) <= set(drawn.tolist())
    assert (drawn > 2000).sum() < 30
    assert thin(steps[:50], inj, keep[:0], 300).all()  # under the cap: everything


def test_a_long_item_is_drawn_on_at_most_cap_steps(planted):
    run, analysis = planted
    data = build(run, analysis, "planted", cap=80)
    for it in data.items:
        assert len(it.steps) <= 80 and set(SCHEDULE) <= set(it.steps)
        for view in it.depths.values():
            for p in view.probes:
                assert len(p.y) == len(it.steps) and set(p.lam) <= set(it.steps)


def _items_file(run, path, context: str):
    """Items whose probes are the run's (the planted run's probes all read 'in' → 'out')."""
    n = run.probes.groupby("depth")["probe"].max() + 1
    items = [
        KnowledgeItem(
            train_context=f"{context} {k}.",
            probes={d: tuple(Probe("in", "out") for _ in range(n[d])) for d in DEPTHS},
        )
        for k in range(run.probes["item"].max() + 1)
    ]
    save_items(items, path)
    return {**run.config, "injection": {"items": str(path)}}


def test_paragraphs_come_from_the_runs_items_file_when_it_still_matches(planted, tmp_path):
    run, analysis = planted
    config = _items_file(run, tmp_path / "items.json", "Zorvan </script> & <b>is</b> a city")
    texts = paragraphs(replace(run, config=config))
    assert texts[3] == "Zorvan </script> & <b>is</b> a city 3."
    page = section(build(replace(run, config=config), analysis, "planted"))
    doc = page.split('id="explorer-data">', 1)[1].split("</script>", 1)[0]
    assert "</script>" not in doc and "<b>" not in doc  # escaped inside the JSON
    assert json.loads(doc)["items"][3]["paragraph"] == texts[3]
    changed = run.probes.assign(input="another question")
    assert paragraphs(replace(run, config=config, probes=changed)) == {}
    missing = {**run.config, "injection": {"items": str(tmp_path / "gone.json")}}
    assert paragraphs(replace(run, config=missing)) == {}
