"""Reader for the JSON probe log of the paper's published code (docs/method.md).

The log is a list with one object per logged step (position 0 is θ_0) holding, for the depth
prefixes ``mem``/``gen``/``gen_hard``, ``<prefix>_target``/``_first``/``_full`` arrays
``[item][probe]`` of mean cross-entropy *losses* (its ``def``, the loss on each item's
paragraph, is not read). It becomes a :class:`~factdyn.rundir.Run` (ℓ = −loss) with the paper's
hard-wired design, so the same pipeline analyses it and a factdyn run alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from factdyn.data.items import DEPTHS, parse_json, read_utf8
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
MAX_STEP = 2**53  # step numbers beyond are not exact as floats; their differences overflow
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


def _short(value: object) -> str:
    """A value for a message: its type, or a short repr for a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = repr(value)
        return text if len(text) <= 24 else f"a {len(text)}-digit number"
    return type(value).__name__


def _loss(value: object, where: str) -> float:
    """One logged loss: a JSON number (null = not logged, NaN); strings, booleans and
    infinities are refused, they are no cross-entropy the published code writes."""
    if value is None:
        return np.nan
    if type(value) not in (int, float):
        raise DataError(f"{where}: expected a number, got {_short(value)}")
    try:
        out = float(value)
    except OverflowError:
        raise DataError(f"{where}: number out of range ({_short(value)})") from None
    if np.isinf(out):
        raise DataError(f"{where}: infinite loss")
    return out


def _grid(rows: list, key: str, where: str) -> np.ndarray:
    """Validate ``key``'s value at every step, element by element: [item][probe] numbers
    (ragged probe lists NaN-padded), the same shape at every step. The slow path, for what
    numpy could not read as a regular numeric array."""
    shape = None
    out: list[list] = []
    for s, row in enumerate(rows):
        at = f"{where}, step {s}, field '{key}'"
        if not isinstance(row, list):
            raise DataError(f"{at}: expected a list over items, got {_short(row)}")
        for k, p in enumerate(row):
            if not isinstance(p, list):
                raise DataError(f"{at}[{k}]: expected a list of probe losses, got {_short(p)}")
        out.append(
            [[_loss(v, f"{at}[{k}][{j}]") for j, v in enumerate(p)] for k, p in enumerate(row)]
        )
        lens = [len(p) for p in row]
        if shape is None:
            shape = lens
        elif lens != shape:
            raise DataError(
                f"{at}: not an [item][probe] array of the same shape at every step "
                "(differs from step 0)"
            )
    width = max(shape or [], default=0)
    arr = np.full((len(rows), len(shape or []), width), np.nan)
    for i, row in enumerate(out):
        for k, p in enumerate(row):
            arr[i, k, : len(p)] = p
    return arr


def _numbers(records: list[dict], key: str, where: str) -> np.ndarray:
    """One ``[item][probe]`` key over all records as (L, I, K) float64.

    A regular numeric array goes through numpy at once (where a JSON ``true`` among numbers
    reads as 1, as numpy has it); anything else — ragged, null, strings, nested wrongly — is
    checked element by element so the message names step, item and probe."""
    try:
        rows = [r[key] for r in records]
    except KeyError:
        raise DataError(f"{where}: field '{key}' missing in some step") from None
    try:
        arr = np.asarray(rows)
    except (ValueError, TypeError, OverflowError):  # ragged, or too deep for numpy
        arr = None
    if arr is None or arr.dtype.kind not in "iuf" or arr.ndim != 3:
        return _grid(rows, key, where)
    arr = arr.astype(np.float64)
    if np.isinf(arr).any():
        s, k, j = np.argwhere(np.isinf(arr))[0]
        raise DataError(f"{where}, step {s}, field '{key}'[{k}][{j}]: infinite loss")
    return arr


def _array(records: list[dict], key: str, where: str) -> np.ndarray:
    """One ``[item][probe]`` key over all records as (L, I, K) float64; ragged items are
    NaN-padded."""
    arr = _numbers(records, key, where)
    if arr.shape[1] == 0:
        raise DataError(f"{where}: field '{key}' lists no items")
    return arr


def _steps(records: list[dict], where: str) -> np.ndarray:
    """Each record's ``step`` (an integer; a float only if whole), relative to the first; the
    record's position when the first record has no ``step``."""
    if "step" not in records[0]:
        return np.arange(len(records), dtype=np.int64)
    raw = []
    for s, r in enumerate(records):
        if "step" not in r:
            raise DataError(f"{where}, step {s}: missing field 'step'")
        value = r["step"]
        ok = type(value) is int or (type(value) is float and value.is_integer())
        if not ok or not -MAX_STEP <= value <= MAX_STEP:
            raise DataError(
                f"{where}, step {s}, field 'step': expected an integer, got {_short(value)}"
            )
        raw.append(int(value))
    steps = np.asarray(raw, dtype=np.int64)
    return steps - steps[0]  # position 0 is θ_0, whatever the absolute step number


def _depth_log(records: list[dict], prefix: str, where: str, n_items: int | None) -> np.ndarray:
    """(L, I, K, S) ℓ of one depth prefix's probes in every statistic of :data:`STATS` (NaN:
    not logged), from its ``<prefix>_<suffix>`` losses; refused unless it has ``n_items``
    items (None: any number)."""
    per_stat = {}
    for stat, suffix in SUFFIX.items():
        key = f"{prefix}_{suffix}" if suffix else None
        if key is not None and (key in records[0] or suffix == "target"):
            per_stat[stat] = -_array(records, key, where)  # loss -> log probability
    target = per_stat["target_mean"]
    if n_items is not None and target.shape[1] != n_items:
        raise DataError(
            f"{where}: field '{prefix}_target' has {target.shape[1]} items, not {n_items}"
        )
    for stat, arr in per_stat.items():
        if arr.shape != target.shape:
            _, n, k = arr.shape
            raise DataError(
                f"{where}: field '{prefix}_{SUFFIX[stat]}' is a {n}x{k} [item][probe] array, "
                f"'{prefix}_target' a {target.shape[1]}x{target.shape[2]} one"
            )
    return np.stack([per_stat.get(s, np.full(target.shape, np.nan)) for s in STATS], axis=-1)


def _injections(scen: list[str]) -> pd.DataFrame:
    """The paper's hard-wired schedule of each item (by its scenario) as an injections table."""
    unknown = -1  # the log does not say which batch row or tokens an injection took
    return pd.DataFrame(
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


def read_reference_log(
    path: str | Path, tokens_per_step: int = TOKENS_PER_STEP, window: int = WINDOW
) -> Run:
    """Read a published-format log into a Run (probes in item, depth, probe order)."""
    path = Path(path)
    records = parse_json(read_utf8(path), str(path))
    if (
        not isinstance(records, list)
        or not records
        or not all(isinstance(r, dict) for r in records)
    ):
        raise DataError(f"{path}: expected a non-empty list of per-step objects")
    steps = _steps(records, str(path))
    if len(steps) > 1 and not (np.diff(steps) > 0).all():
        raise DataError(f"{path}: field 'step' is not strictly increasing")

    blocks, rows = [], []
    n_items = None
    for prefix, depth in PREFIXES.items():
        stacked = _depth_log(records, prefix, str(path), n_items)  # (L, I, K, S)
        n_items = stacked.shape[1]
        # the probe positions that exist: logged at some step
        present = ~np.isnan(stacked[..., STATS.index("target_mean")]).all(axis=0)  # (I, K)
        items, probes = np.nonzero(present)
        blocks.append(stacked[:, items, probes, :])
        rows += [(int(k), depth, int(j)) for k, j in zip(items, probes, strict=True)]
    if not rows:
        raise DataError(f"{path}: no probe losses logged (every '_target' value is empty or null)")
    order = sorted(
        range(len(rows)), key=lambda i: (rows[i][0], DEPTHS.index(rows[i][1]), rows[i][2])
    )
    logprobs = np.concatenate(blocks, axis=1)[:, order, :]
    probes = pd.DataFrame([rows[i] for i in order], columns=["item", "depth", "probe"])
    probes = probes.assign(input="", target="")  # the log records no probe texts
    scen = [_scenario(k) for k in range(n_items or 0)]
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
        run_tables(probes, scen, _injections(scen)),
        np.zeros((0, len(TRAIN_COLUMNS))),
    )
