"""The report's item explorer: pick a scenario, depth and item, see that item's probes.

The figures of the report average over items; a reader who doubts an average wants to look at
the items behind it. :func:`build` gathers, for every injected item of one run, its probes' ℓ
at the logged steps (the analysed statistic, as logged), its injection steps, its paragraph,
and what the analysis decided about each probe (t_LAM and gain per injection from the
acquisition table; exclusion, retainability and IQR removals from the per-probe table), so
the page shows the analysis's own numbers rather than a second computation of them.
:func:`factdyn.report.explorer_page.section` turns that into one block of the page.

A long sparse log would make the page large, so each item's series is thinned to about
:data:`CAP` steps (:func:`thin`); values are rounded to 4 significant digits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from factdyn.analyze.result import Analysis
from factdyn.data.items import KnowledgeItem, load_items
from factdyn.errors import DataError
from factdyn.rundir import Run

CAP = 600  # steps drawn per item at most (beyond those always kept: see thin)
DIGITS = 4  # significant digits of every number in the page's data


def _round(values: Sequence[float] | np.ndarray) -> list[float | None]:
    """Numbers for JSON: rounded to :data:`DIGITS` significant digits, None where undefined.
    Vectorised (a paper-scale page has a million values): x is rounded at its own power of
    ten, multiplying or dividing by an exact power of ten, so each result is the double
    nearest its short decimal and JSON writes it with at most DIGITS digits."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x) & (x != 0)
    power = np.floor(np.log10(np.abs(np.where(finite, x, 1.0)))).astype(np.int64)
    shift = power - (DIGITS - 1)
    scale = 10.0 ** np.abs(shift).astype(np.float64)
    rounded = np.where(shift < 0, np.round(x * scale) / scale, np.round(x / scale) * scale)
    return [v if math.isfinite(v) else None for v in rounded.tolist()]


def _number(v: float) -> float | None:
    return _round([v])[0]


@dataclass(frozen=True)
class ProbeView:
    """One probe of an item at one depth: its series and what the analysis decided."""

    probe: int
    input: str
    target: str
    y: list[float | None]  # ℓ at the item's steps (None: not scored there)
    lam: list[int]  # t_LAM per injection (-1: none in the log)
    gain: list[float | None]  # effectivity of each injection
    retainability: float | None  # R at retainability_t, the last t of its population's range
    retainability_t: int
    excluded: bool  # no acquisition: left out of retainability
    n_retainability: int  # t at which it has R
    gain_outliers: int  # injections whose gain the IQR filter removed
    retainability_outliers: int  # t whose R the IQR filter removed


@dataclass(frozen=True)
class DepthView:
    """An item's probes at one depth and their summary: the mean gain over probes and
    injections, the mean R of its probes, and how many of their gains and R values the IQR
    filter removed (of how many)."""

    effectivity: float | None
    retainability: float | None
    gains: int
    gain_outliers: int
    n_retainability: int
    retainability_outliers: int
    probes: list[ProbeView]


@dataclass(frozen=True)
class ItemView:
    item: int
    scenario: str
    injections: list[int]
    paragraph: str | None  # None: the run's items file is not at hand (or has changed)
    steps: list[int]
    depths: dict[str, DepthView]


@dataclass(frozen=True)
class Explorer:
    """Everything the explorer shows about one run."""

    run: str
    stat: str
    window: int
    iqr_factor: float
    drift_corrected: bool
    retainability_unit: str
    cap: int
    items: list[ItemView]

    def to_json(self) -> str:
        """The page's data, safe inside ``<script type="application/json">``."""
        # each dataclass as its fields (asdict would deep-copy a million values first)
        text = json.dumps(self, default=vars, ensure_ascii=False, separators=(",", ":"))
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def paragraphs(run: Run) -> dict[int, str]:
    """Each item's train_context, from the items file the run's config names (the run
    directory keeps only the probes): only a local file, and only for items whose probes are
    the run's, so a file changed since the run shows nothing rather than a wrong paragraph."""
    inj, data = run.config.get("injection") or {}, run.config.get("data") or {}
    source = inj.get("items")
    if source is None and data.get("source", "world") == "world" and data.get("path"):
        source = str(Path(data["path"]) / "knowledge.json")  # as training reads it
    if source is None or not Path(source).is_file():
        return {}
    try:
        items = load_items(source)
    except DataError:
        return {}
    per_run = run.meta.get("pooled_items")  # pooled seeds: item i of every run is item i
    out = {}
    for item, probes in run.probes.groupby("item"):
        k = int(item) % per_run if per_run else int(item)
        if k < len(items) and _same_probes(items[k], probes):
            out[int(item)] = items[k].train_context
    return out


def _same_probes(item: KnowledgeItem, probes: pd.DataFrame) -> bool:
    have = item.probes
    return all(
        r.depth in have and r.probe < len(have[r.depth]) and have[r.depth][r.probe].input == r.input
        for r in probes.itertuples()
    )


def thin(steps: np.ndarray, injections: np.ndarray, keep: np.ndarray, cap: int) -> np.ndarray:
    """Mask of the rows of ``steps`` to draw: all of them when there are at most ``cap``;
    else the ``keep`` steps, the first and the last, and as many more as fit in ``cap``,
    spaced evenly in log(1 + steps since the latest injection): dense where ℓ moves fast
    (just after each injection), sparse along the slow forgetting tail."""
    if len(steps) <= cap:
        return np.ones(len(steps), dtype=bool)
    inj = np.unique(injections)
    segment = np.searchsorted(inj, steps, side="right")  # 0: before the first injection
    since = steps - np.where(segment > 0, inj[np.maximum(segment - 1, 0)], steps[0])
    age = np.log1p(since)
    must = np.isin(steps, keep)
    must[[0, -1]] = True

    def pick(k: float) -> np.ndarray:
        bins = np.floor(k * age)
        new = np.r_[True, (bins[1:] != bins[:-1]) | (segment[1:] != segment[:-1])]
        return new | must

    lo, hi = 0.0, float(since.max() + 2)  # at hi every row is its own bin: more than cap
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if pick(mid).sum() <= cap else (lo, mid)
    return pick(lo)


def build(run: Run, analysis: Analysis, label: str, cap: int = CAP) -> Explorer:
    """The explorer's data for ``run`` from its ``analysis`` (of that same run)."""
    settings = analysis.settings
    ell = np.asarray(run.stat(settings.stat), dtype=np.float64)
    steps = np.asarray(run.steps, dtype=np.int64)
    outcome = {int(r["probe_id"]): r for r in analysis.per_probe.to_dict("records")}
    acq = analysis.acquisition.sort_values(["probe_id", "injection"])
    ids, starts = np.unique(acq["probe_id"].to_numpy(), return_index=True)

    def per_probe(column: str) -> dict[int, np.ndarray]:  # a column of the acquisition table
        return dict(zip(ids.tolist(), np.split(acq[column].to_numpy(), starts[1:]), strict=True))

    injected, lam, gain = per_probe("step"), per_probe("lam_step"), per_probe("gain")
    texts = paragraphs(run)
    table = run.probes.assign(column=np.arange(len(run.probes)))
    table = table[table["probe_id"].isin(list(outcome))]  # the probes of a population
    items = []
    for scenario in analysis.scenarios():
        for item, rows in table[table["scenario"] == scenario].groupby("item", sort=True):
            first = int(rows["probe_id"].iloc[0])
            injections = injected[first].tolist()
            lams = np.concatenate([lam[p] for p in rows["probe_id"]])
            scored = ~np.isnan(ell[:, rows["column"]]).all(axis=1)
            keep = np.concatenate([injections, np.add(injections, 1), lams[lams >= 0]])
            shown = np.flatnonzero(scored)[thin(steps[scored], np.array(injections), keep, cap)]
            views: dict[str, DepthView] = {}
            for depth in analysis.depths(scenario):
                at = rows[rows["depth"] == depth].to_dict("records")
                if not at:
                    continue
                probes = [
                    _probe_view(
                        r, ell[shown, r["column"]], lam[r["probe_id"]], gain[r["probe_id"]],
                        outcome[r["probe_id"]],
                    )
                    for r in at
                ]  # fmt: skip
                views[depth] = _summary(
                    probes,
                    np.concatenate([gain[r["probe_id"]] for r in at]),
                    [outcome[r["probe_id"]] for r in at],
                )
            items.append(
                ItemView(
                    item=int(item),
                    scenario=scenario,
                    injections=injections,
                    paragraph=texts.get(int(item)),
                    steps=steps[shown].tolist(),
                    depths=views,
                )
            )
    return Explorer(
        run=label,
        stat=settings.stat,
        window=settings.window,
        iqr_factor=settings.iqr_factor,
        drift_corrected=settings.drift_corrected,
        retainability_unit=settings.retainability_unit,
        cap=cap,
        items=items,
    )


def _probe_view(
    row: dict, y: np.ndarray, lam: np.ndarray, gain: np.ndarray, outcome: dict
) -> ProbeView:
    """A probe from its ``row`` of the run's probe table, its ℓ ``y`` at the item's shown
    steps, its t_LAM and gain per injection, and its ``outcome`` (its per-probe row)."""
    return ProbeView(
        probe=int(row["probe"]),
        input=str(row["input"]),
        target=str(row["target"]),
        y=_round(y),
        lam=lam.tolist(),
        gain=_round(gain),
        retainability=_number(outcome["retainability"]),
        retainability_t=int(outcome["retainability_t"]),
        excluded=bool(outcome["excluded"]),
        n_retainability=int(outcome["n_retainability"]),
        gain_outliers=int(outcome["n_gain_outliers"]),
        retainability_outliers=int(outcome["n_retainability_outliers"]),
    )


def _summary(probes: list[ProbeView], gains: np.ndarray, outcomes: list[dict]) -> DepthView:
    """An item's depth from its probes' unrounded ``gains`` and per-probe ``outcomes``."""
    kept = np.array([o["retainability"] for o in outcomes if not o["excluded"]], dtype=float)
    return DepthView(
        effectivity=_mean(gains),
        retainability=_mean(kept),
        gains=int(np.isfinite(gains).sum()),
        gain_outliers=sum(p.gain_outliers for p in probes),
        n_retainability=sum(p.n_retainability for p in probes),
        retainability_outliers=sum(p.retainability_outliers for p in probes),
        probes=probes,
    )


def _mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return _number(float(x.mean())) if len(x) else None
