"""The run directory: what a training run writes and what analysis reads (no torch here).

Layout (documented in the README):

    config.yaml          resolved configuration of the run
    meta.json            tokens_per_step, window, stats, status, steps_done
    probes.parquet       one row per probe column: probe_id, item, scenario, depth, probe,
                         input, target
    items.parquet        one row per item: item, scenario, n_injections
    injections.parquet   step, row, item, scenario, variant, token_start, token_end
    steps.npy            int64 (L,)        the planned logged steps (θ_t, t = step)
    logprobs.npy         float32 (L, P, S) ℓ per logged step × probe × statistic; NaN = not yet
    context.npy          float32 (L, I)    mean log prob of each item's train_context
    train.npy            float64 (T, 3)    per update t: loss, learning rate, tokens seen after t
    checkpoints/         step_<t>/ resumable checkpoints (model, optimizer, state)

The ``.npy`` logs are preallocated from the evaluation schedule and written in place, so a run
killed at any point leaves valid files; a resume rewrites the rows after its checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from factdyn.errors import DataError

# The scenario name of the never-injected items whose probes measure drift (SPEC §8).
CONTROL = "control"
STATS: tuple[str, ...] = ("target_mean", "target_sum", "first", "full")
TRAIN_COLUMNS: tuple[str, ...] = ("loss", "lr", "tokens")


@dataclass
class Run:
    """A run's logs as arrays and tables; only completed logged steps are included."""

    path: Path
    config: dict
    meta: dict
    steps: np.ndarray  # (L,) int64
    logprobs: np.ndarray  # (L, P, S) float32
    context: np.ndarray  # (L, I) float32
    probes: pd.DataFrame
    items: pd.DataFrame
    injections: pd.DataFrame
    train: pd.DataFrame  # step, loss, lr, tokens

    @property
    def tokens_per_step(self) -> int:
        return int(self.meta["tokens_per_step"])

    @property
    def window(self) -> int:
        return int(self.meta.get("window", 50))

    def stat(self, name: str) -> np.ndarray:
        """(L, P) matrix of one statistic."""
        return self.logprobs[:, :, STATS.index(name)]


def init_logs(
    run_dir: Path, steps: np.ndarray, n_probes: int, n_items: int, total_steps: int
) -> None:
    """Preallocate the NaN-filled log arrays for a planned evaluation schedule."""
    np.save(run_dir / "steps.npy", np.asarray(steps, dtype=np.int64))
    for name, shape, dtype in (
        ("logprobs.npy", (len(steps), n_probes, len(STATS)), np.float32),
        ("context.npy", (len(steps), n_items), np.float32),
        ("train.npy", (total_steps, len(TRAIN_COLUMNS)), np.float64),
    ):
        arr = np.lib.format.open_memmap(run_dir / name, mode="w+", dtype=dtype, shape=shape)
        arr[...] = np.nan
        arr.flush()
        del arr


def open_log(run_dir: Path, name: str) -> np.memmap:
    """Open a preallocated log for in-place writing."""
    return np.lib.format.open_memmap(run_dir / name, mode="r+")


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory (finished or not) into a :class:`Run`."""
    run_dir = Path(run_dir)
    if not (run_dir / "meta.json").is_file():
        raise DataError(f"{run_dir}: not a factdyn run directory (no meta.json)")
    meta = json.loads((run_dir / "meta.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    steps = np.load(run_dir / "steps.npy")
    logprobs = np.load(run_dir / "logprobs.npy", mmap_mode="r")
    context = np.load(run_dir / "context.npy", mmap_mode="r")
    done = (
        ~np.isnan(logprobs[:, :, 0]).all(axis=1)
        if logprobs.shape[1]
        else np.zeros(len(steps), bool)
    )
    n = int(done.argmin()) if not done.all() else len(steps)  # rows are written in order
    train = np.load(run_dir / "train.npy")
    t_done = int(meta.get("steps_done", len(train)))
    train_df = pd.DataFrame(train[:t_done], columns=list(TRAIN_COLUMNS))
    train_df.insert(0, "step", np.arange(t_done, dtype=np.int64))
    return Run(
        path=run_dir,
        config=config,
        meta=meta,
        steps=np.asarray(steps[:n]),
        logprobs=np.asarray(logprobs[:n]),
        context=np.asarray(context[:n]),
        probes=pd.read_parquet(run_dir / "probes.parquet"),
        items=pd.read_parquet(run_dir / "items.parquet"),
        injections=pd.read_parquet(run_dir / "injections.parquet"),
        train=train_df,
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
    for k, name in enumerate(STATS):
        out[name] = run.logprobs[:, :, k].reshape(-1)
    scored = ~np.isnan(run.logprobs).all(axis=2).reshape(-1)  # sparse: items off their steps
    return out[scored].reset_index(drop=True)
