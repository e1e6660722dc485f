"""Reader for the JSON probe log of the paper's published code (SPEC §5, "Reference compatibility").

The log is a list with one object per logged step (position 0 is θ_0) holding, for the depth
prefixes ``mem``/``gen``/``gen_hard``, ``<prefix>_target``/``_first``/``_full`` arrays
``[item][probe]`` of mean cross-entropy *losses*, and ``def`` (``[item]``, the loss on the
item's train_context). It becomes a :class:`~factdyn.rundir.Run` (ℓ = −loss) with the paper's
hard-wired design, so the same pipeline analyses it and a factdyn run alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from factdyn.data.items import DEPTHS
from factdyn.errors import DataError
from factdyn.rundir import INJECTIONS, STATS, TRAIN_COLUMNS, Run, make_run, run_meta, run_tables

# prefix in the log -> factdyn depth
PREFIXES: dict[str, str] = {"mem": "memorization", "gen": "semantic", "gen_hard": "composition"}
# the paper's split: item ranges per scenario (items past 119 were not part of the design)
SPLIT: tuple[tuple[str, int, int], ...] = (
    ("paraphrase", 0, 40),
    ("duplicate", 40, 80),
    ("once", 80, 120),
)
UNUSED = "unused"
INTERVAL = 100
N_INJECTIONS = 10
WINDOW = 50
TOKENS_PER_STEP = 2048 * 2048  # the paper's OLMo batch: 2048 sequences of 2048 tokens
# factdyn statistic -> key suffix in the log (target_sum was never logged there)
SUFFIX: dict[str, str | None] = {
    "target_mean": "target",
    "target_sum": None,
    "first": "first",
    "full": "full",
}


def _scenario(item: int) -> str:
    for name, lo, hi in SPLIT:
        if lo <= item < hi:
            return name
    return UNUSED


def _injection_steps(scenario: str) -> list[int]:
    if scenario == "once":
        return [0]
    if scenario in ("paraphrase", "duplicate"):
        return [INTERVAL * k for k in range(N_INJECTIONS)]
    return []


def _array(records: list[dict], key: str, where: str) -> np.ndarray:
    """One key over all records as (L, I, K) float64; ragged items are NaN-padded."""
    try:
        rows = [r[key] for r in records]
    except KeyError:
        raise DataError(f"{where}: field '{key}' missing in some step") from None
    try:
        arr = np.asarray(rows, dtype=np.float64)
    except (ValueError, TypeError):
        arr = None
    if arr is not None and arr.ndim == 3:
        return arr
    shapes = [[len(p) for p in r] if isinstance(r, list) else None for r in rows]
    if any(s is None or s != shapes[0] for s in shapes) or not shapes:
        raise DataError(
            f"{where}: field '{key}' is not a [item][probe] array of the same shape at every step"
        )
    width = max(shapes[0], default=0)
    out = np.full((len(rows), len(shapes[0]), width), np.nan)
    for i, r in enumerate(rows):
        for k, p in enumerate(r):
            out[i, k, : len(p)] = p
    return out


def _context(records: list[dict], n_items: int, where: str) -> np.ndarray:
    """ℓ of each item's train_context per step (from ``def``), NaN if not logged."""
    if not all("def" in r for r in records):
        return np.full((len(records), n_items), np.nan)
    try:
        arr = -np.asarray([r["def"] for r in records], dtype=np.float64)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.ndim != 2 or arr.shape[1] != n_items:
        raise DataError(
            f"{where}: field 'def' is not an [item] array of {n_items} numbers at every step"
        )
    return arr


def read_reference_log(
    path: str | Path, tokens_per_step: int = TOKENS_PER_STEP, window: int = WINDOW
) -> Run:
    """Read a published-format log into a Run (probes in item, depth, probe order)."""
    path = Path(path)
    try:
        records = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if (
        not isinstance(records, list)
        or not records
        or not all(isinstance(r, dict) for r in records)
    ):
        raise DataError(f"{path}: expected a non-empty list of per-step objects")
    if "step" in records[0]:
        try:
            raw = np.asarray([int(r["step"]) for r in records], dtype=np.int64)
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"{path}: field 'step' missing or not an integer in some step"
            ) from None
        steps = raw - raw[0]  # position 0 is θ_0, whatever the absolute step number
    else:
        steps = np.arange(len(records), dtype=np.int64)
    if len(steps) > 1 and not (np.diff(steps) > 0).all():
        raise DataError(f"{path}: field 'step' is not strictly increasing")

    blocks, rows = [], []
    n_items = None
    for prefix, depth in PREFIXES.items():
        per_stat = {}
        for stat, suffix in SUFFIX.items():
            key = f"{prefix}_{suffix}" if suffix else None
            if key is not None and (key in records[0] or suffix == "target"):
                per_stat[stat] = -_array(records, key, str(path))  # loss -> log probability
        target = per_stat["target_mean"]
        if n_items is None:
            n_items = target.shape[1]
        elif target.shape[1] != n_items:
            raise DataError(
                f"{path}: field '{prefix}_target' has {target.shape[1]} items, not {n_items}"
            )
        stacked = np.stack(
            [per_stat.get(s, np.full(target.shape, np.nan)) for s in STATS], axis=-1
        )  # (L, I, K, S)
        present = ~np.isnan(target).all(axis=0)  # (I, K) probe positions that exist
        items, probes = np.nonzero(present)
        blocks.append((items, probes, stacked[:, items, probes, :]))
        rows += [(int(k), depth, int(j)) for k, j in zip(items, probes, strict=True)]
    order = sorted(
        range(len(rows)), key=lambda i: (rows[i][0], DEPTHS.index(rows[i][1]), rows[i][2])
    )
    logprobs = np.concatenate([b[2] for b in blocks], axis=1)[:, order, :]
    probes = pd.DataFrame([rows[i] for i in order], columns=["item", "depth", "probe"])
    probes = probes.assign(input="", target="")  # the log records no probe texts

    scen = [_scenario(k) for k in range(n_items or 0)]
    unknown = -1  # the log does not say which batch row or tokens an injection took
    injections = pd.DataFrame(
        [
            {
                "step": s,
                "row": unknown,
                "item": k,
                "scenario": sc,
                "variant": v if sc == "paraphrase" else 0,
                "token_start": unknown,
                "token_end": unknown,
            }
            for k, sc in enumerate(scen)
            for v, s in enumerate(_injection_steps(sc))
        ],
        columns=list(INJECTIONS),
    ).sort_values(["step", "item"], ignore_index=True)
    return make_run(
        path,
        {"reference_log": str(path)},
        run_meta(
            tokens_per_step,
            window=int(window),
            status="reference",
            source=str(path),
            steps_done=int(steps[-1]),
        ),
        steps,
        logprobs,  # float64: the published losses, unrounded
        _context(records, n_items or 0, str(path)),
        run_tables(probes, scen, injections),
        np.zeros((0, len(TRAIN_COLUMNS))),
    )
