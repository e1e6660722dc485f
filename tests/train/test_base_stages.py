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
    kw = {"batch_size": 4, **kw}
    return BaseConfig(hidden_size=32, layers=1, heads=2, intermediate_size=64, seq_len=64,
                      steps=40, lr=3e-3, warmup_steps=4, threads=2, **kw)  # fmt: skip


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


def test_settling_continues_at_the_final_lr_with_the_smaller_batch_and_records_where_it_stopped(
    toy_world, tmp_path
):
    cfg = dict(batch_size=8, snapshots=())
    plain = pretrain(toy_world, tmp_path / "plain", _cfg(**cfg))
    settled = pretrain(
        toy_world, tmp_path / "settled", _cfg(**cfg, settle_steps=10, settle_batch_size=2)
    )
    state = json.loads((settled / "state.json").read_text())
    # 40 updates of 8 sequences, then 10 of 2, held at the schedule's end: 0.25 × 3e-3
    assert state["step"] == 50 and state["data_position"] == 40 * 8 + 10 * 2
    assert math.isclose(state["lr"], 0.25 * 3e-3, rel_tol=1e-12)
    assert json.loads((plain / "state.json").read_text())["data_position"] == 40 * 8
    losses = json.loads((settled / "pretrain_loss.json").read_text())
    plain_losses = json.loads((plain / "pretrain_loss.json").read_text())
    assert len(losses) == 50 and losses[:40] == plain_losses  # the schedule's part is untouched
    a, b = (load_file(p / "model.safetensors") for p in (plain, settled))
    assert not all(np.array_equal(a[k], b[k]) for k in a)
