"""The run directory: what a training run writes and what analysis reads (no torch here).

Layout (documented in docs/run-format.md):

    config.yaml          resolved configuration of the run
    meta.json            what analysis needs (see META_KEYS), status, steps_done
    probes.parquet       one row per probe column: probe_id, item, scenario, depth, probe,
                         input, target
    items.parquet        one row per item: item, scenario, n_injections
    injections.parquet   step, row, item, scenario, variant, token_start, token_end
    provenance.parquet   each injection as placed: step, rank, micro-batch, rows, hashes
    steps.npy            int64 (L,)        the planned logged steps (θ_t, t = step)
    logprobs.npy         float32 (L, P, S) per logged step × probe × statistic (STATS: ℓ as
                         target_mean, target_sum, first, full; greedy 0/1); NaN = not yet
    train.npy            float64 (T, 3)    per update t: loss, learning rate, tokens seen after t
    checkpoints/         step_<t>/ resumable checkpoints (model, optimizer, state)

The ``.npy`` logs are preallocated from the evaluation schedule and written in place, so a run
killed at any point leaves valid files; a resume rewrites the rows after its checkpoint.

This module owns the format: the table schemas, the one constructor of the tables
(:func:`run_tables`, used by training and by the reader of the paper's logs alike), the meta
keys (:func:`run_meta`) and the in-memory :class:`Run` (:func:`make_run`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from factdyn.errors import DataError
from factdyn.files import write_json_atomic
from factdyn.runcheck import (
    check_ids,
    check_injections,
    check_meta,
    check_steps,
    check_table,
    logged_rows,
)

# The scenario name of the never-injected items whose probes measure drift (docs/method.md).
CONTROL = "control"
# Per probe: four log probabilities, then greedy (1.0 when the model's argmax continuation is
# the target, else 0.0). Logs written before greedy existed hold only the first four.
STATS: tuple[str, ...] = ("target_mean", "target_sum", "first", "full", "greedy")
TRAIN_COLUMNS: tuple[str, ...] = ("loss", "lr", "tokens")

# Table schemas: column -> dtype, in file order. Writers and readers use only these.
PROBES: dict[str, str] = {
    "probe_id": "int64",
    "item": "int64",
    "scenario": "str",
    "depth": "str",
    "probe": "int64",
    "input": "str",
    "target": "str",
}
ITEMS: dict[str, str] = {"item": "int64", "scenario": "str", "n_injections": "int64"}
INJECTIONS: dict[str, str] = {
    "step": "int64",
    "row": "int64",  # batch row; -1 where the log does not say (the paper's logs)
    "item": "int64",
    "scenario": "str",
    "variant": "int64",  # 0 = train_context, i = paraphrases[i-1]
    "token_start": "int64",
    "token_end": "int64",
}
# One row per injected text where it actually landed (provenance.parquet, factdyn.inject.provenance).
PROVENANCE: dict[str, str] = {
    "step": "int64",
    "rank": "int64",  # the process that placed it
    "micro": "int64",  # micro-batch within the step on that rank
    "micro_row": "int64",  # row within that micro-batch
    "row": "int64",  # global batch row, as injections.parquet's
    "item": "int64",
    "variant": "int64",
    "placement": "str",  # prepend or replace
    "token_start": "int64",
    "token_end": "int64",
    "text_sha256": "str",  # of the item's text as UTF-8
    "tokens_sha256": "str",  # of the placed ids[start:end] as little-endian int64
}
PROVENANCE_FILE = "provenance.parquet"
TABLE_FILES: dict[str, str] = {
    "probes": "probes.parquet",
    "items": "items.parquet",
    "injections": "injections.parquet",
}
# What meta.json records for analysis; null where the source does not say.
META_KEYS: tuple[str, ...] = (
    "tokens_per_step",
    "batch_size",  # sequences per update
    "seq_len",
    "window",
    "n_parameters",
    "lr_first",  # learning rate of the run's first update
    "base_step",  # pretraining step of the checkpoint the run continues
    "model_lineage",  # the model whose stage that checkpoint is (hub id, or the tiny base's)
)


@dataclass
class Run:
    """A run's logs as arrays and tables; only completed logged steps are included."""

    path: Path
    config: dict
    meta: dict
    steps: np.ndarray  # (L,) int64
    logprobs: np.ndarray  # (L, P, S) float32
    probes: pd.DataFrame
    items: pd.DataFrame
    injections: pd.DataFrame
    train: pd.DataFrame  # step, loss, lr, tokens

    @property
    def tokens_per_step(self) -> int:
        return int(self.meta["tokens_per_step"])

    @property
    def window(self) -> int:
        window = self.meta.get("window")
        return 50 if window is None else int(window)

    def has_stat(self, name: str) -> bool:
        """Whether the probe log holds ``name`` (a log older than the statistic does not)."""
        return STATS.index(name) < self.logprobs.shape[2]

    def stat(self, name: str) -> np.ndarray:
        """(L, P) matrix of one statistic."""
        if not self.has_stat(name):
            held = ", ".join(STATS[: self.logprobs.shape[2]])
            raise DataError(
                f"{self.path}: statistic '{name}' was not logged (the log holds {held})"
            )
        return self.logprobs[:, :, STATS.index(name)]


@dataclass
class RunTables:
    """The three tables of a run, in their schemas."""

    probes: pd.DataFrame
    items: pd.DataFrame
    injections: pd.DataFrame


def _conform(df: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    """``df`` with exactly the schema's columns, in its order and dtypes."""
    return df[list(schema)].astype(schema).reset_index(drop=True)


def run_tables(
    probes: pd.DataFrame, scenarios: Sequence[str], injections: pd.DataFrame
) -> RunTables:
    """The run's tables from the probes in canonical order (item, depth, probe, input, target),
    each item's scenario, and one row per injection (every INJECTIONS column)."""
    probes = probes.assign(
        probe_id=np.arange(len(probes), dtype=np.int64),
        scenario=[scenarios[i] for i in probes["item"]],
    )
    steps = injections.groupby("item").step.nunique()
    items = pd.DataFrame(
        {
            "item": np.arange(len(scenarios), dtype=np.int64),
            "scenario": list(scenarios),
            "n_injections": [int(steps.get(i, 0)) for i in range(len(scenarios))],
        }
    )
    return RunTables(
        _conform(probes, PROBES), _conform(items, ITEMS), _conform(injections, INJECTIONS)
    )


def write_run_tables(run_dir: Path, tables: RunTables) -> None:
    """Write the tables into a run directory being created (see ``files.atomic_dir``)."""
    for name, file in TABLE_FILES.items():
        getattr(tables, name).to_parquet(run_dir / file, index=False)


def read_run_tables(run_dir: Path) -> RunTables:
    """The tables as written (their schema is the writer's, see :func:`run_tables`)."""
    return RunTables(**{name: pd.read_parquet(run_dir / f) for name, f in TABLE_FILES.items()})


def run_meta(tokens_per_step: int, **known: object) -> dict:
    """meta.json's content: every META_KEYS key (null unless given) plus ``known``."""
    return {**dict.fromkeys(META_KEYS), "tokens_per_step": int(tokens_per_step), **known}


def make_run(
    path: Path,
    config: dict,
    meta: dict,
    steps: np.ndarray,
    logprobs: np.ndarray,
    tables: RunTables,
    train: np.ndarray,
) -> Run:
    """A :class:`Run` from its arrays and tables; ``train`` is the (T, 3) per-update log."""
    train_df = pd.DataFrame(train, columns=list(TRAIN_COLUMNS))
    train_df.insert(0, "step", np.arange(len(train), dtype=np.int64))
    return Run(
        path=path,
        config=config,
        meta=meta,
        steps=steps,
        logprobs=logprobs,
        probes=tables.probes,
        items=tables.items,
        injections=tables.injections,
        train=train_df,
    )


def init_logs(run_dir: Path, steps: np.ndarray, n_probes: int, total_steps: int) -> None:
    """Preallocate the NaN-filled log arrays for a planned evaluation schedule."""
    np.save(run_dir / "steps.npy", np.asarray(steps, dtype=np.int64))
    for name, shape, dtype in (
        ("logprobs.npy", (len(steps), n_probes, len(STATS)), np.float32),
        ("train.npy", (total_steps, len(TRAIN_COLUMNS)), np.float64),
    ):
        arr = np.lib.format.open_memmap(run_dir / name, mode="w+", dtype=dtype, shape=shape)
        arr[...] = np.nan
        arr.flush()
        del arr


def steps_trained(run_dir: str | Path) -> int:
    """How many updates a run, running or not, has logged (the filled rows of train.npy);
    0 before its logs exist."""
    try:
        log = np.load(Path(run_dir) / "train.npy", mmap_mode="r")
    except (OSError, ValueError):
        return 0
    return int(np.isfinite(log[:, 0]).sum())


def open_log(run_dir: Path, name: str) -> np.memmap:
    """Open a preallocated log for in-place writing."""
    return np.lib.format.open_memmap(run_dir / name, mode="r+")


def read_meta(run_dir: str | Path) -> dict:
    """A run directory's meta.json, or one line saying it is not a run or is damaged."""
    f = Path(run_dir) / "meta.json"
    if not f.is_file():
        raise DataError(f"{run_dir}: not a factdyn run directory (no meta.json)")
    try:
        meta = json.loads(f.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise DataError(f"{f}: damaged, cannot be read ({reason})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{f}: must hold a mapping")
    return meta


class Status(StrEnum):
    """Where a run, or the sweep's job that trains it, stands: the one vocabulary of both.

    meta.json's ``status`` is RUNNING (training now, or killed: a resume continues it), DONE
    or FAILED; a run not begun is NEW. A sweep's job is also WAITING (not started yet),
    STOPPED (by its interrupted driver) or CANCELLED (its Slurm job, by its driver)."""

    NEW = "new"
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"
    CANCELLED = "cancelled"


def run_status(run_dir: str | Path) -> Status:
    """NEW (no meta.json), DONE, FAILED, or RUNNING for any other run a resume continues."""
    if not (Path(run_dir) / "meta.json").is_file():
        return Status.NEW
    status = read_meta(run_dir).get("status")
    return Status(status) if status in (Status.DONE, Status.FAILED) else Status.RUNNING


def _reader(run_dir: Path):
    """``read(name, parse)``: one file of the run, parsed; a truncated or corrupt one is one
    line naming it."""

    def read(name: str, parse):
        try:
            return parse(run_dir / name)
        except (ValueError, TypeError, EOFError, yaml.YAMLError, RecursionError) as e:
            reason = " ".join(str(e).split())[:160] or type(e).__name__
        except OSError as e:  # a reader's own error about the content (pyarrow), not a path's
            if e.filename is not None:
                raise
            reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise DataError(f"{run_dir / name}: damaged, cannot be read ({reason})")

    return read


def read_table(run_dir: str | Path, name: str, schema: dict[str, str]) -> pd.DataFrame:
    """One Parquet table of the run, read and its schema checked: a damaged file is one line
    naming it, as :func:`load_run` says it."""
    run_dir = Path(run_dir)
    table = _reader(run_dir)(name, pd.read_parquet)
    check_table(table, schema, run_dir / name)
    return table


def _check_shapes(run_dir: Path, steps, logprobs, train, n_probes: int) -> None:
    """The logs agree with each other and with the probe table."""
    if logprobs.ndim != 3 or steps.shape != logprobs.shape[:1] or train.ndim != 2:
        raise DataError(
            f"{run_dir}: logs disagree in shape (steps.npy {steps.shape}, logprobs.npy "
            f"{logprobs.shape}, train.npy {train.shape})"
        )
    if logprobs.shape[1] != n_probes or logprobs.shape[2] not in (len(STATS) - 1, len(STATS)):
        raise DataError(
            f"{run_dir / 'logprobs.npy'}: shape {logprobs.shape}, but probes.parquet has "
            f"{n_probes} probes (the shape must be ({len(steps)}, {n_probes}, {len(STATS)}))"
        )
    if train.shape[1] != len(TRAIN_COLUMNS):
        raise DataError(
            f"{run_dir / 'train.npy'}: shape {train.shape} is not (updates, {len(TRAIN_COLUMNS)})"
        )


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory (finished or not) into a :class:`Run`, every file checked first
    (:mod:`factdyn.runcheck`: a damaged or impossible run is one line naming the file, field
    and row); the ``context.npy`` that older runs hold is not read."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    read = _reader(run_dir)
    config = read("config.yaml", lambda p: yaml.safe_load(p.read_text())) or {}
    if not isinstance(config, dict):
        raise DataError(f"{run_dir / 'config.yaml'}: must hold a mapping")
    steps = read("steps.npy", np.load)
    logprobs = read("logprobs.npy", lambda p: np.load(p, mmap_mode="r"))
    train = read("train.npy", np.load)
    tables = RunTables(**{k: read(f, pd.read_parquet) for k, f in TABLE_FILES.items()})
    files = {k: run_dir / f for k, f in TABLE_FILES.items()}
    check_meta(meta, run_dir / "meta.json")
    for name, schema in (("probes", PROBES), ("items", ITEMS), ("injections", INJECTIONS)):
        check_table(getattr(tables, name), schema, files[name])
    _check_shapes(run_dir, steps, logprobs, train, len(tables.probes))
    check_steps(steps, run_dir / "steps.npy")
    check_ids(tables.probes, tables.items, files)
    check_injections(tables.injections, tables.items, len(train), files)
    t_done = meta.get("steps_done")
    t_done = len(train) if t_done is None else t_done
    if t_done > len(train):
        raise DataError(
            f"{run_dir / 'meta.json'}: steps_done {t_done} is more than train.npy's "
            f"{len(train)} updates"
        )
    n = logged_rows(logprobs, steps, STATS, len(STATS) - 1, run_dir / "logprobs.npy")
    return make_run(
        run_dir,
        config,
        meta,
        np.asarray(steps[:n]),
        np.asarray(logprobs[:n]),
        tables,
        train[:t_done],
    )


def export_long(run: Run) -> pd.DataFrame:
    """The probe log as a long table: one row per (logged step, probe) that was scored."""
    n_steps, n_probes = run.logprobs.shape[:2]
    probes = run.probes
    out = pd.DataFrame(
        {
            "step": np.repeat(run.steps, n_probes),
            "tokens": np.repeat(run.steps * run.tokens_per_step, n_probes),
            **{
                c: np.tile(probes[c].to_numpy(), n_steps)
                for c in ("item", "scenario", "depth", "probe")
            },
        }
    )
    for name in STATS:  # a statistic the log predates: NaN, so every export has every column
        out[name] = run.stat(name).reshape(-1) if run.has_stat(name) else np.float32(np.nan)
    scored = ~np.isnan(run.logprobs).all(axis=2).reshape(-1)  # sparse: items off their steps
    return out[scored].reset_index(drop=True)


def update_meta(run_dir: Path, **kv: object) -> None:
    """Rewrite meta.json with ``kv`` changed (status, steps_done, error)."""
    write_json_atomic(run_dir / "meta.json", {**read_meta(run_dir), **kv})
