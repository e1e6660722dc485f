"""Pool runs that differ only in their seed into one run whose items are (seed, item) pairs.

One tiny run has few items per scenario, so its intervals are wide; several seeds of the same
configuration (the same items, another order of the background corpus) replicate its training
noise. Pooled, every step of the analysis sees all the (seed, item) pairs, and the item
bootstrap (:mod:`factdyn.analyze.bootstrap`) resamples *items*, each with its copies in every
seed (``meta["pooled_items"]``): a pair of seeds is not twice the items, so the interval does
not pretend it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from factdyn.config import SIDE_FIELDS, changed_fields, describe_changes
from factdyn.errors import DataError
from factdyn.rundir import Run, load_run

# what pooled runs may differ in: the seeds, and where in the data stream they start (the
# replicates of a sweep read successive blocks of it)
SEED_FIELDS = (("data", "seed"), ("data", "start"))
# how the probes were batched for scoring changes no number beyond float rounding (1e-5)
SCORING_FIELDS = (("eval", "batch_tokens"),)


def _without_seeds(config: dict) -> dict:
    out = json.loads(json.dumps(config, default=str))
    for section, key in (*SEED_FIELDS, *SCORING_FIELDS, *SIDE_FIELDS):
        out.get(section, {}).pop(key, None)
    return out


def data_order(run: Run) -> tuple[int, int]:
    """(seed, first position) of the background data a run read: what makes it a replicate.
    A run records it in meta.json (``data_order``); for an older run it follows from its
    config, where ``data.seed`` did not yet order the ``hf`` and ``olmo`` sources (they were
    read in their own order, that of seed 0), and a null ``data.start`` is the base's
    recorded position."""
    rec = run.meta.get("data_order")
    if isinstance(rec, dict) and "seed" in rec and "start" in rec:
        return int(rec["seed"]), int(rec["start"])
    data = run.config.get("data") or {}
    seed = 0 if data.get("source") in ("hf", "olmo") else int(data.get("seed") or 0)
    start = data.get("start")
    if start is None:
        start = (run.meta.get("base_state") or {}).get("data_position", 0)
    return seed, int(start or 0)


def _same_run(first: Run, other: Run) -> bool:
    """Whether ``other`` is ``first`` again: its folder, or a copy (the same training log
    and the same scores at the last logged step, which no other seed has). A pooled copy
    would double n and narrow every interval for nothing."""
    if not (len(first.steps) and first.logprobs.shape == other.logprobs.shape):
        return False
    return np.array_equal(
        first.train.to_numpy(), other.train.to_numpy(), equal_nan=True
    ) and np.array_equal(first.logprobs[-1], other.logprobs[-1], equal_nan=True)


def _check_poolable(first: Run, other: Run) -> None:
    """Not the same run twice; same configuration but the seeds, another order of the data,
    same logged steps, probes and injection steps."""
    where = f"pool: {other.path} and {first.path}"
    if _same_run(first, other):
        what = (
            "the same run given twice"
            if Path(first.path).resolve() == Path(other.path).resolve()
            else f"{other.path} is a copy of {first.path} (the same training log and scores)"
        )
        raise DataError(f"{where}: {what}; pool runs trained with different data.seed")
    a, b = _without_seeds(first.config), _without_seeds(other.config)
    if differ := changed_fields(a, b):
        raise DataError(
            f"{where}: configurations differ in more than data.seed / data.start: "
            f"{describe_changes(a, b, differ)}"
        )
    if (order := data_order(first)) == data_order(other):
        source = (first.config.get("data") or {}).get("source", "world")
        seeds = [(r.config.get("data") or {}).get("seed", 0) for r in (other, first)]
        unapplied = (
            f" (data.seed {seeds[0]} and {seeds[1]} were not applied to data.source '{source}' "
            "by the factdyn that trained them)"
            if seeds[0] != seeds[1]
            else ""
        )
        raise DataError(
            f"{where}: both read the background data in the same order (data.seed {order[0]}, "
            f"data.start {order[1]}){unapplied}, so they are not independent replicates; "
            "pool runs trained with different data.seed (or data.start)"
        )
    if not np.array_equal(first.steps, other.steps):
        raise DataError(f"{where}: logged steps differ (one run is unfinished?)")
    cols = ["item", "scenario", "depth", "probe", "input", "target"]
    if not first.probes[cols].equals(other.probes[cols]):
        raise DataError(f"{where}: probe tables differ")
    keys = ["step", "item"]
    a = first.injections[keys].sort_values(keys).reset_index(drop=True)
    b = other.injections[keys].sort_values(keys).reset_index(drop=True)
    if not a.equals(b):
        raise DataError(f"{where}: injection steps differ")


def pool_runs(runs: Sequence[Run | str | Path]) -> Run:
    """One :class:`Run` holding every run's probes, item ids offset so that item ``i`` of run
    ``k`` becomes ``k · n_items + i``. The first run's config, meta and training log stand
    for all; ``meta["pooled_from"]`` lists the runs."""
    loaded = [r if isinstance(r, Run) else load_run(r) for r in runs]
    if not loaded:
        raise DataError("pool: give at least one run")
    first = loaded[0]
    for other in loaded[1:]:
        _check_poolable(first, other)
    n_items = int(first.items["item"].max()) + 1 if len(first.items) else 0

    def offset(table: pd.DataFrame, k: int) -> pd.DataFrame:
        return table.assign(item=table["item"] + k * n_items)

    probes = pd.concat([offset(r.probes, k) for k, r in enumerate(loaded)], ignore_index=True)
    probes["probe_id"] = np.arange(len(probes), dtype=np.int64)
    n_stats = min(r.logprobs.shape[2] for r in loaded)  # a run logged before greedy: 4
    return replace(
        first,
        meta={
            **first.meta,
            "pooled_from": [str(r.path) for r in loaded],
            "pooled_items": n_items,  # the bootstrap's unit: item i of every run together
        },
        logprobs=np.concatenate([r.logprobs[:, :, :n_stats] for r in loaded], axis=1),
        probes=probes,
        items=pd.concat([offset(r.items, k) for k, r in enumerate(loaded)], ignore_index=True),
        injections=pd.concat(
            [offset(r.injections, k) for k, r in enumerate(loaded)], ignore_index=True
        ),
    )
