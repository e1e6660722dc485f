"""When each item is injected, in which scenario, and with which wording (docs/method.md#injection-scenarios)."""

from __future__ import annotations

from dataclasses import dataclass

from factdyn.config import InjectionConfig
from factdyn.data.items import KnowledgeItem
from factdyn.errors import DataError
from factdyn.rundir import CONTROL


@dataclass(frozen=True)
class Injection:
    step: int
    item: int
    scenario: str
    variant: int  # 0 = train_context, i >= 1 = paraphrases[i - 1]


def split_items(n_items: int, cfg: InjectionConfig) -> list[str]:
    """Scenario of every item: contiguous blocks in scenario order, controls at the end.

    With 120 items, no controls and the three default scenarios this is the paper's split
    (0-39 paraphrase, 40-79 duplicate, 80-119 once).
    """
    n = min(n_items, cfg.max_items or n_items)
    n_inj = n - cfg.n_controls
    if n_inj < len(cfg.scenarios):
        raise DataError(
            f"injection: {n} items cannot fill {len(cfg.scenarios)} scenarios and "
            f"{cfg.n_controls} controls"
        )
    fixed = sum(s.n_items or 0 for s in cfg.scenarios)
    free = [s for s in cfg.scenarios if s.n_items is None]
    if fixed > n_inj or (free and n_inj - fixed < len(free)):
        raise DataError(f"injection.scenarios: n_items ask for {fixed} of {n_inj} injectable items")
    share, extra = divmod(n_inj - fixed, len(free)) if free else (0, 0)
    out: list[str] = []
    for s in cfg.scenarios:
        k = s.n_items if s.n_items is not None else share + (1 if extra > 0 else 0)
        if s.n_items is None:
            extra -= 1
        out += [s.name] * k
    out += [CONTROL] * (n - len(out))
    return out


def build_schedule(
    cfg: InjectionConfig, items: list[KnowledgeItem]
) -> tuple[list[Injection], list[str]]:
    """All injections of a run, sorted by step then item, and the scenario of every item."""
    if cfg.schedule is not None:
        n = min(len(items), cfg.max_items or len(items))
        scenarios = [CONTROL] * n
        out = []
        for e in cfg.schedule:
            if e.item >= n:
                raise DataError(f"injection.schedule: item {e.item} out of range ({n} items)")
            scenarios[e.item] = e.scenario
            out.append(Injection(e.step, e.item, e.scenario, e.variant))
    else:
        scenarios = split_items(len(items), cfg)
        by_name = {s.name: s for s in cfg.scenarios}
        out = []
        position = {s.name: k for k, s in enumerate(cfg.scenarios)}
        rank: dict[str, int] = {}  # each item's place in its scenario
        for k, name in enumerate(scenarios):
            if name == CONTROL:
                continue
            s = by_name[name]
            interval = cfg.interval if s.interval is None else s.interval
            gap = cfg.cohort_gap if cfg.cohort_gap is not None else interval // cfg.cohorts
            cohort = rank.setdefault(name, 0) % cfg.cohorts
            rank[name] += 1
            start = cfg.first_step + position[name] * cfg.scenario_offset
            first = (start if s.first_step is None else s.first_step) + cohort * gap
            for i in range(s.count):
                variant = i if s.variant == "paraphrase" else 0
                out.append(Injection(first + i * interval, k, name, variant))
    for inj in out:
        if inj.variant > len(items[inj.item].paraphrases):
            raise DataError(
                f"items, item {inj.item}, field 'paraphrases': {len(items[inj.item].paraphrases)} "
                f"paraphrases, but injection at step {inj.step} needs variant {inj.variant}"
            )
    return sorted(out, key=lambda x: (x.step, x.item)), scenarios
