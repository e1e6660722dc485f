import pytest

from factdyn.config import InjectionConfig, ScenarioConfig, ScheduleEntry
from factdyn.data.items import KnowledgeItem, Probe
from factdyn.errors import DataError
from factdyn.inject.schedule import build_schedule, split_items


def _items(n: int, paraphrases: int = 9) -> list[KnowledgeItem]:
    probes = {d: (Probe("a", "b"),) for d in ("memorization", "semantic", "composition")}
    return [
        KnowledgeItem(f"ctx {i}", probes, tuple(f"para {i}.{j}" for j in range(paraphrases)))
        for i in range(n)
    ]


def test_paper_split_is_contiguous_thirds():
    cfg = InjectionConfig(n_controls=0)
    s = split_items(120, cfg)
    assert s[:40] == ["paraphrase"] * 40
    assert s[40:80] == ["duplicate"] * 40
    assert s[80:] == ["once"] * 40


def test_controls_at_the_end_and_uneven_shares():
    s = split_items(13, InjectionConfig(n_controls=3))
    assert s.count("control") == 3 and s[-3:] == ["control"] * 3
    assert [s.count(n) for n in ("paraphrase", "duplicate", "once")] == [4, 3, 3]


def test_paper_schedule_steps_and_variants():
    cfg = InjectionConfig(
        interval=100,
        cohorts=1,
        scenario_offset=0,
        n_controls=0,
        scenarios=[
            ScenarioConfig(name="paraphrase", variant="paraphrase", count=10),
            ScenarioConfig(name="duplicate", count=10),
            ScenarioConfig(name="once", count=1),
        ],
    )
    sched, scen = build_schedule(cfg, _items(6))
    by_item = {}
    for inj in sched:
        by_item.setdefault(inj.item, []).append((inj.step, inj.variant))
    assert by_item[0] == [(100 * i, i) for i in range(10)]  # paraphrase: a new wording each time
    assert by_item[2] == [(100 * i, 0) for i in range(10)]  # duplicate: always train_context
    assert by_item[4] == [(0, 0)]  # once
    assert scen == ["paraphrase"] * 2 + ["duplicate"] * 2 + ["once"] * 2


def test_too_few_paraphrases_names_the_item():
    cfg = InjectionConfig(
        n_controls=0, scenarios=[ScenarioConfig(name="p", variant="paraphrase", count=4)]
    )
    with pytest.raises(DataError, match="item 0, field 'paraphrases'"):
        build_schedule(cfg, _items(2, paraphrases=2))


def test_explicit_schedule_leaves_other_items_as_controls():
    cfg = InjectionConfig(schedule=[ScheduleEntry(step=3, item=1, variant=2, scenario="x")])
    sched, scen = build_schedule(cfg, _items(3))
    assert [(i.step, i.item, i.variant) for i in sched] == [(3, 1, 2)]
    assert scen == ["control", "x", "control"]


def test_cohorts_stagger_each_scenarios_items():
    cfg = InjectionConfig(
        interval=20,
        cohorts=3,
        scenario_offset=0,
        n_controls=1,
        scenarios=[ScenarioConfig(name="dup", count=2), ScenarioConfig(name="once", count=1)],
    )
    sched, _ = build_schedule(cfg, _items(9))
    steps = {}
    for inj in sched:
        steps.setdefault(inj.item, []).append(inj.step)
    # items 0-3 dup, 4-7 once, 8 control; cohort k of a scenario starts 20 // 3 = 6 steps later
    assert steps == {
        0: [0, 20], 1: [6, 26], 2: [12, 32], 3: [0, 20],
        4: [0], 5: [6], 6: [12], 7: [0],
    }  # fmt: skip
    gap = InjectionConfig(cohorts=2, cohort_gap=50, scenario_offset=0, n_controls=0)
    firsts = sorted({min(i.step for i in build_schedule(gap, _items(6))[0] if i.item == k)
                     for k in range(6)})  # fmt: skip
    assert firsts == [0, 50]


def test_scenario_offset_and_cohorts_leave_one_injection_per_step():
    cfg = InjectionConfig(interval=20, cohorts=5, scenario_offset=1, n_controls=0)
    sched, scen = build_schedule(cfg, _items(15))
    steps = [inj.step for inj in sched]
    assert len(steps) == len(set(steps)) == 5 * 5 + 5 * 5 + 5  # no step carries two
    firsts = {}
    for inj in sched:
        firsts.setdefault(inj.item, inj.step)
    # cohort c of scenario k (paraphrase 0, duplicate 1, once 2) starts at 4c + k
    assert [firsts[i] for i in range(15)] == [c * 4 + k for k in range(3) for c in range(5)]
