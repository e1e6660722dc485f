"""The paper's published log format: a hand-made JSON read and analysed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from factdyn.analyze.populations import analyze_reference_log
from factdyn.analyze.reference import read_reference_log
from factdyn.errors import DataError

PREFIX = {"mem": 0.0, "gen": 0.01, "gen_hard": 0.02}


def loss(step: int, item: int, prefix: str, probe: int) -> float:
    """A loss that encodes where it came from."""
    return 1 + step + item / 1000 + PREFIX[prefix] + probe / 10_000


def tiny_log(n_items: int = 121, n_probes: int = 2, steps=(40000, 40001, 40002, 40003)):
    out = []
    for s_abs in steps:
        s = s_abs - steps[0]
        rec = {"step": s_abs, "def": [2.0 + s + k / 1000 for k in range(n_items)]}
        for prefix in PREFIX:
            grid = [[loss(s, k, prefix, j) for j in range(n_probes)] for k in range(n_items)]
            rec[f"{prefix}_target"] = grid
            rec[f"{prefix}_first"] = [[v + 0.5 for v in row] for row in grid]
        out.append(rec)
    return out


def test_reader_maps_items_depths_and_negates_losses(tmp_path):
    path = tmp_path / "log.json"
    path.write_text(json.dumps(tiny_log()))
    run = read_reference_log(path)
    assert run.steps.tolist() == [0, 1, 2, 3]  # position 0 is θ_0
    assert len(run.probes) == 121 * 3 * 2
    first = run.probes.iloc[:6]
    assert first.depth.tolist() == ["memorization"] * 2 + ["semantic"] * 2 + ["composition"] * 2
    assert run.probes.probe_id.tolist() == list(range(len(run.probes)))
    by_item = run.probes.groupby("item").scenario.first()
    assert by_item[[0, 39, 40, 79, 80, 119, 120]].tolist() == [
        *("paraphrase", "paraphrase", "duplicate", "duplicate", "once", "once", "unused")
    ]
    row = run.probes[(run.probes.item == 45) & (run.probes.depth == "semantic")]
    pid = int(row[row.probe == 1].probe_id.iloc[0])
    assert run.stat("target_mean")[2, pid] == pytest.approx(-loss(2, 45, "gen", 1))
    assert run.stat("first")[2, pid] == pytest.approx(-loss(2, 45, "gen", 1) - 0.5)
    assert np.isnan(run.stat("full")).all() and np.isnan(run.stat("target_sum")).all()
    inj = run.injections
    assert inj[inj.item == 3].step.tolist() == list(range(0, 1000, 100))
    assert inj[inj.item == 3].variant.tolist() == list(range(10))  # paraphrase i
    assert inj[inj.item == 50].variant.tolist() == [0] * 10
    assert inj[inj.item == 100].step.tolist() == [0]
    assert inj[inj.item == 120].empty
    assert run.items.n_injections[[0, 40, 80, 120]].tolist() == [10, 10, 1, 0]
    assert run.window == 50 and run.tokens_per_step == 2048 * 2048


@pytest.mark.parametrize(
    "doc, match",
    [
        ({"step": 0}, "list"),
        ([], "list"),
        ([{"step": 0, "mem_target": [[1.0]]}], "gen_target"),
        ([{"mem_target": [[1.0]]}, {"mem_target": [[1.0, 2.0]]}], "same shape"),
        ([{"step": 1}, {"step": 0}], "increasing"),
    ],
)
def test_reader_rejects_bad_logs_in_one_line(tmp_path, doc, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=match) as e:
        read_reference_log(path)
    assert "\n" not in str(e.value)


def planted_reference_log(n_steps: int = 1000) -> tuple[list[dict], dict]:
    """90 items (40 paraphrase, 40 duplicate, 10 once), one probe per depth: each injection
    adds 0.3 nats one update later, ℓ then stays until the next one; after the last peak
    ℓ = pre + G·(0.9 − 0.2·log10 t). Item 0's probes never change (zero acquisition), item 1's
    fall by 0.1 (negative acquisition)."""
    a, b = 0.2, 0.9
    t = np.arange(n_steps)
    ell = {}
    for k in range(90):
        sched = [0] if k >= 80 else list(range(0, 1000, 100))
        x = np.full(n_steps, -4.0)
        for i, s in enumerate(sched):
            x[s + 1 :] = -4.0 + 0.3 * (i + 1)
        peak = sched[-1] + 1
        gain = 0.3 * len(sched)
        x[peak + 1 :] = -4.0 + gain * (b - a * np.log10(t[peak + 1 :] - peak))
        if k == 0:
            x[:] = -4.0
        if k == 1:
            x[1:] = -4.1
        ell[k] = x
    records = []
    for s in range(n_steps):
        rec = {"step": s}
        for prefix in PREFIX:
            rec[f"{prefix}_target"] = [[float(-ell[k][s])] for k in range(90)]
        records.append(rec)
    return records, {"a": a, "b": b}


@pytest.fixture(scope="module")
def ref_log(tmp_path_factory):
    records, planted = planted_reference_log()
    path = tmp_path_factory.mktemp("ref") / "experiments.json"
    path.write_text(json.dumps(records))
    return path, planted


def test_reference_log_analysis_recovers_the_plant_in_both_modes(ref_log):
    path, planted = ref_log
    paper = analyze_reference_log(path)
    ref = analyze_reference_log(path, reference=True)
    assert paper.settings.iqr_factor == 1.5 and ref.settings.iqr_factor == 2.0
    assert not paper.settings.drift_corrected and not ref.settings.drift_corrected
    assert paper.run_info.tokens_per_step == 2048 * 2048 and paper.run_info.n_parameters is None
    assert paper.scenarios() == ["paraphrase", "duplicate", "once"]
    for depth in ("memorization", "semantic", "composition"):
        e = paper.get("duplicate", depth)
        assert e.effectivity_per_injection == pytest.approx([0.3] * 10, abs=1e-9)
        assert e.decay_constant == pytest.approx(planted["a"], abs=1e-6)
        assert e.x_intercept_steps == pytest.approx(10**4.5, rel=1e-5)
        assert e.x_intercept_tokens == pytest.approx(10**4.5 * 2048 * 2048, rel=1e-5)
        r = ref.get("duplicate", depth)
        assert r.retainability[0] == 100.0
        assert r.decay_constant == pytest.approx(100 * planted["a"], abs=1e-4)
        assert r.x_intercept_steps == pytest.approx(e.x_intercept_steps, rel=1e-6)
        # item 0 (zero gain) is excluded in both; item 1 (negative gain) only by the text
        assert paper.get("paraphrase", depth).n_excluded == 2
        assert ref.get("paraphrase", depth).n_excluded == 1
        assert paper.get("once", depth).effectivity == pytest.approx(0.3, abs=1e-9)
