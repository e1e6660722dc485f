"""The building blocks of the findings (:mod:`factdyn.report.findings`,
:mod:`factdyn.report.between_runs`): a verdict, the population numbers a claim is about."""

from __future__ import annotations

import math
from collections.abc import Callable

from factdyn.analyze.result import Analysis, Population

MEM, SEM, COMP = "memorization", "semantic", "composition"
PARA, DUP = "paraphrase", "duplicate"

Verdict = tuple[bool | None, str]  # (reproduced, or None: not testable; evidence)
Metric = Callable[[Population], float]


def effectivity(p: Population) -> float:
    return p.effectivity


def decay(p: Population) -> float:
    return p.decay_constant


def tau_tokens(p: Population) -> float:
    return p.x_intercept_tokens


def value(a: Analysis, s: str, d: str, metric: Metric) -> float:
    """``metric`` of the scenario × depth population, NaN when the run has none."""
    p = a.get(s, d)
    return float(metric(p)) if p is not None else math.nan


def finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def all_of(verdicts: list[bool], parts: list[str], none: str) -> Verdict:
    """All of ``verdicts`` (None when there are none), the parts as evidence (``none`` when
    there are no parts)."""
    return (all(verdicts) if verdicts else None), "; ".join(parts) or none
