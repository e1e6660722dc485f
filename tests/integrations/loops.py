"""What the tests of factdyn inside other trainers share: the run every loop makes (its
schedule, evaluation and optimizer as --set strings) and the check that two loops logged the
same run. Imported by the run helpers (hf_run.py, olmo_run.py, also run by torchrun) and the
tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from factdyn import load_run
from factdyn.rundir import PROVENANCE_FILE


def shared_settings(batch: int, micro: int, steps: int) -> list[str]:
    """Everything but the data and the model: a small schedule whose three scenarios all
    inject within ``steps``, every step logged, AdamW at a constant 1e-3 from scratch."""
    return [
        "data.start=0",
        f"train.batch_size={batch}",
        f"train.micro_batch_size={micro}",
        f"train.steps={steps}",
        "train.checkpoint_every=100",
        "train.threads=1",
        "injection.max_items=6",
        "injection.n_controls=3",
        "injection.interval=3",
        "injection.cohorts=1",
        "injection.scenario_offset=0",
        "injection.scenarios=[{name: paraphrase, variant: paraphrase, count: 2}, "
        "{name: duplicate, count: 2}, {name: once, count: 1}]",
        "eval.window=2",
        "eval.schedule=every",
        "optim.lr=1e-3",
        "optim.load_state=false",
    ]


def assert_same_run(own, other, steps: int) -> None:
    """``other`` (another trainer's run) logged what ``own`` (factdyn's loop) did: every step,
    the probes to 1e-4 nat, the loss to 1e-5, the same learning rates, tables and plan."""
    assert other.meta["status"] == "done" and other.meta["steps_done"] == steps
    assert own.steps.tolist() == other.steps.tolist() == list(range(steps + 1))
    np.testing.assert_allclose(other.logprobs, own.logprobs, atol=1e-4, rtol=0)
    np.testing.assert_allclose(other.train.loss, own.train.loss, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(other.train.lr, own.train.lr)
    assert own.injections.equals(other.injections) and own.probes.equals(other.probes)


def assert_resumed_like_whole(whole: Path, resumed: Path, atol: float) -> None:
    """A run stopped and resumed in its trainer holds what the uninterrupted one does: its
    probe log (to ``atol``), training log and provenance."""
    a, b = load_run(whole), load_run(resumed)
    assert b.meta["status"] == "done"
    np.testing.assert_allclose(b.logprobs, a.logprobs, atol=atol, rtol=0)
    np.testing.assert_allclose(b.train.to_numpy(), a.train.to_numpy(), atol=1e-6)
    pd.testing.assert_frame_equal(
        pd.read_parquet(resumed / PROVENANCE_FILE), pd.read_parquet(whole / PROVENANCE_FILE)
    )
