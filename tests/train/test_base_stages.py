"""The tiny base's earlier stages: snapshots saved during pretraining that a run continues
like the final base, without changing the final base."""

from __future__ import annotations

import json
import math

import numpy as np
from safetensors.numpy import load_file

from factdyn.config import BaseConfig
from factdyn.train.base import pretrain, stage_path


def _cfg(**kw) -> BaseConfig:
    return BaseConfig(hidden_size=32, layers=1, heads=2, intermediate_size=64, seq_len=64,
                      batch_size=4, steps=40, lr=3e-3, warmup_steps=4, threads=2, **kw)  # fmt: skip


def test_snapshots_hold_their_step_lr_and_data_position_and_leave_the_base_alone(
    toy_world, tmp_path
):
    base = pretrain(toy_world, tmp_path / "with", _cfg(snapshots=(0.25, 0.5)))
    plain = pretrain(toy_world, tmp_path / "without", _cfg(snapshots=()))
    a, b = (load_file(p / "model.safetensors") for p in (base, plain))
    assert all(np.array_equal(a[k], b[k]) for k in a)  # saving a snapshot perturbs nothing
    assert not (plain / "stages").exists()
    for step in (10, 20):
        snap = stage_path(base, step)
        state = json.loads((snap / "state.json").read_text())
        # the cosine schedule written out by hand: warmup 4, then 36 steps to 0.25 × 3e-3
        frac = (step - 4) / 36
        want = 3e-3 * (0.25 + 0.75 * 0.5 * (1 + math.cos(math.pi * frac)))
        assert math.isclose(state["lr"], want, rel_tol=1e-12)
        assert state["step"] == step and state["data_position"] == step * 4
        assert state["lineage"] == json.loads((base / "state.json").read_text())["lineage"]
        assert (snap / "tokenizer.json").is_file() and (snap / "optimizer.pt").is_file()
        w = load_file(snap / "model.safetensors")
        assert not all(np.array_equal(w[k], a[k]) for k in a)  # an earlier model
