"""What a run's files must hold to be read at all: every rule :func:`factdyn.rundir.load_run`
applies before a command sees the run, so that a damaged or impossible run is one line naming
the file, the field and the row at fault, from every command that reads it (analyze, compare,
report, export, simulate, a sweep's report, the demo), instead of a traceback or numbers.

The rules (docs/run-format.md): meta.json's fields have their types; the tables have their
schema's columns and types, unique ids and items that exist; the logged steps are whole
numbers ≥ 0 that increase; the log-probabilities are finite and ≤ 0 (NaN: not scored), the
greedy flags not infinite; injections name items of the run at updates it has. The checks are
vectorised and read the probe log in chunks, once, however large the memory-mapped file is;
this module knows no schema of its own: :mod:`factdyn.rundir`, the format's owner, hands them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from factdyn.errors import DataError

# A log probability may round a little above 0 (a float32 log-softmax of a near-certain
# token): tolerated up to this, in nats; anything larger is damage.
LOGPROB_TOLERANCE = 1e-3
# How much of the probe log is read at once (bytes): bounds the memory of the check.
CHUNK_BYTES = 1 << 25

_COUNT, _POSITIVE = "a whole number ≥ 0", "a whole number ≥ 1"
# meta.json: field -> what it must be when present and not null
META_RULES: dict[str, str] = {
    "tokens_per_step": _POSITIVE,
    "window": _POSITIVE,
    "batch_size": _POSITIVE,
    "seq_len": _POSITIVE,
    "n_parameters": _POSITIVE,
    "total_steps": _POSITIVE,
    "world_size": _POSITIVE,
    "steps_done": _COUNT,
    "base_step": _COUNT,
    "lr_first": "a finite number",
    "status": "a string",
    "model_lineage": "a string",
    "model": "a string",
    "base_state": "a mapping",
    "data_order": "a mapping",
    "config": "a mapping",
}
REQUIRED_META = ("tokens_per_step",)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _fits(value: object, rule: str) -> bool:
    if rule == _COUNT:
        return _is_int(value) and value >= 0
    if rule == _POSITIVE:
        return _is_int(value) and value >= 1
    if rule == "a finite number":
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    return isinstance(value, str if rule == "a string" else Mapping)


def check_meta(meta: Mapping, file: Path) -> None:
    """meta.json's fields have their types (a field a source does not know may be null)."""
    for key in REQUIRED_META:
        if meta.get(key) is None:
            raise DataError(f"{file}: no {key} (must be {META_RULES[key]})")
    for key, rule in META_RULES.items():
        value = meta.get(key)
        if value is not None and not _fits(value, rule):
            raise DataError(f"{file}: {key} must be {rule}, not {value!r}")
    for outer, key, rule in (
        ("data_order", "seed", _COUNT),
        ("data_order", "start", _COUNT),
        ("base_state", "config", "a mapping"),
        ("base_state", "data_position", _COUNT),
    ):
        value = (meta.get(outer) or {}).get(key)
        if value is not None and not _fits(value, rule):
            raise DataError(f"{file}: {outer}.{key} must be {rule}, not {value!r}")


def check_steps(steps: np.ndarray, file: Path) -> None:
    """The logged steps: whole numbers ≥ 0, strictly increasing (all of them, planned too)."""
    if not np.issubdtype(steps.dtype, np.integer):
        raise DataError(f"{file}: must hold whole numbers (int64), not {steps.dtype}")
    if len(steps) and (neg := np.flatnonzero(steps < 0)).size:
        raise DataError(f"{file}: row {neg[0]}: step {steps[neg[0]]} is negative")
    if (back := np.flatnonzero(np.diff(steps) <= 0)).size:
        i = int(back[0]) + 1
        raise DataError(
            f"{file}: steps must increase; row {i}: step {steps[i]} after {steps[i - 1]}"
        )


def check_table(df: pd.DataFrame, schema: Mapping[str, str], file: Path) -> None:
    """The table has every column of its schema, of its type, with no empty value."""
    for col, dtype in schema.items():
        if col not in df.columns:
            raise DataError(f"{file}: no column '{col}'")
        s = df[col]
        fits = (
            pd.api.types.is_integer_dtype(s)
            if dtype == "int64"
            else pd.api.types.is_string_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype)
        )
        if not fits:
            raise DataError(f"{file}: column '{col}' must hold {dtype} values, not {s.dtype}")
        if (empty := np.flatnonzero(s.isna().to_numpy())).size:
            raise DataError(f"{file}: row {empty[0]}: '{col}' is empty")


def _first_repeat(values: np.ndarray) -> int | None:
    """The row of the first value seen before, if any."""
    dup = np.flatnonzero(pd.Series(values).duplicated().to_numpy())
    return int(dup[0]) if dup.size else None


def check_ids(probes: pd.DataFrame, items: pd.DataFrame, files: Mapping[str, Path]) -> None:
    """Probe ids are the log's columns 0..P-1 in order; item ids unique, ≥ 0, and every probe's
    item one of them."""
    ids = probes["probe_id"].to_numpy()
    if (row := _first_repeat(ids)) is not None:
        raise DataError(f"{files['probes']}: row {row}: probe_id {ids[row]} repeats an earlier row")
    if (off := np.flatnonzero(ids != np.arange(len(ids)))).size:
        raise DataError(
            f"{files['probes']}: row {off[0]}: probe_id {ids[off[0]]} (the ids are the columns "
            f"of logprobs.npy, 0..{len(ids) - 1} in order)"
        )
    known = items["item"].to_numpy()
    if (row := _first_repeat(known)) is not None:
        raise DataError(f"{files['items']}: row {row}: item {known[row]} repeats an earlier row")
    if (neg := np.flatnonzero(known < 0)).size:
        raise DataError(f"{files['items']}: row {neg[0]}: item {known[neg[0]]} is negative")
    _known_items(probes, known, files["probes"], files["items"])


def _known_items(table: pd.DataFrame, known: np.ndarray, file: Path, items_file: Path) -> None:
    if (absent := np.flatnonzero(~np.isin(table["item"].to_numpy(), known))).size:
        row = int(absent[0])
        raise DataError(
            f"{file}: row {row}: item {table['item'].iat[row]} is not in {items_file.name}"
        )


def check_injections(
    injections: pd.DataFrame, items: pd.DataFrame, n_updates: int, files: Mapping[str, Path]
) -> None:
    """Every injection names an item of the run at one of its updates 0..T-1."""
    file = files["injections"]
    _known_items(injections, items["item"].to_numpy(), file, files["items"])
    steps = injections["step"].to_numpy()
    if (out := np.flatnonzero((steps < 0) | (steps >= n_updates))).size:
        raise DataError(
            f"{file}: row {out[0]}: step {steps[out[0]]} is not an update of the run "
            f"(0..{n_updates - 1}, train.npy's rows)"
        )


def logged_rows(
    logprobs: np.ndarray, steps: np.ndarray, stats: Sequence[str], n_logprob: int, file: Path
) -> int:
    """How many rows of the (L, P, S) probe log are logged (rows are written in order; the
    first row with no probe scored ends them), after checking every value of those rows: the
    first ``n_logprob`` statistics (named by ``stats``) finite and ≤ 0 or NaN (not scored),
    the others (flags) not infinite. One pass over the log, a chunk of rows at a time."""
    n_rows, n_probes = logprobs.shape[:2]
    if n_probes == 0:
        return 0
    chunk = max(1, CHUNK_BYTES // max(1, logprobs[:1].nbytes))
    for start in range(0, n_rows, chunk):
        x = np.asarray(logprobs[start : start + chunk])
        done = ~np.isnan(x[:, :, 0]).all(axis=1)
        end = len(x) if done.all() else int(done.argmin())
        _check_values(x[:end], start, steps, stats, n_logprob, file)
        if end < len(x):
            return start + end
    return n_rows


def _extremes(a: np.ndarray) -> tuple[float, float]:
    """The least and greatest value of ``a``, NaN aside (NaN when all are): two reductions,
    no copy of ``a``."""
    if not a.size:
        return math.nan, math.nan
    return float(np.fmin.reduce(a, axis=None)), float(np.fmax.reduce(a, axis=None))


def _check_values(
    x: np.ndarray, start: int, steps: np.ndarray, stats: Sequence[str], n_logprob: int, file: Path
) -> None:
    """Rows ``start``… of the log (a chunk): log probabilities in (−inf, tolerance] or NaN,
    flags finite or NaN; the first value at fault named by its step, probe and statistic."""
    lp, flags = x[:, :, :n_logprob], x[:, :, n_logprob:]
    (lp_low, lp_high), (flag_low, flag_high) = _extremes(lp), _extremes(flags)
    faults = []
    if lp_low == -math.inf or lp_high > LOGPROB_TOLERANCE:
        bad = np.isneginf(lp) | (lp > LOGPROB_TOLERANCE)
        faults.append((lp, bad, 0, "a log probability: finite and ≤ 0 (NaN: not scored)"))
    if math.isinf(flag_low) or math.isinf(flag_high):
        faults.append((flags, np.isinf(flags), n_logprob, "a flag: finite (1: greedy, 0: not)"))
    for values, bad, offset, rule in faults[:1]:
        r, p, s = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(
            f"{file}: step {steps[start + r]} (row {start + r}), probe_id {p}, "
            f"{stats[s + offset]}: {float(values[r, p, s]):.6g} is not {rule}"
        )
