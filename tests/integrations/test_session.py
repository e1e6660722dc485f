"""The Session checks that another trainer placed every planned injection of a step once:
a micro-batch it never saw, or one it placed twice, stops the run with one line naming the
step (planted on the toy world's plan, no training)."""

from __future__ import annotations

import pytest
import torch
from hf_run import BATCH, STEPS, settings
from transformers import AutoTokenizer

from factdyn.config import load_config
from factdyn.errors import DataError
from factdyn.integrations.core import Session
from factdyn.train.distributed import World


@pytest.fixture
def session(toy_world, toy_base, tmp_path):
    cfg = load_config(None, settings(toy_world, toy_base))
    one = World(0, 1, torch.device("cpu"))
    tokenizer = AutoTokenizer.from_pretrained(toy_base)
    made = Session.prepare(
        cfg, tmp_path / "run", tokenizer=tokenizer, world=one, batch_size=BATCH, steps=STEPS
    )
    made.open(resume=False)
    yield made
    made.finish(done=False)


def _batch(session) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.ones((BATCH, session.cfg.data.seq_len), dtype=torch.long)
    return ids, ids.clone()


def _first_injection_step(session) -> int:
    return int(session.plan.placements.step.min())


def test_every_planned_injection_placed_once_passes(session):
    step = _first_injection_step(session)
    session.inject(step, 0, 0, *_batch(session))
    session.end_step(step, 1.0, 1e-3)
    assert len(session.provenance.table) == (session.plan.placements.step == step).sum()


def test_a_micro_batch_never_seen_is_one_line_naming_the_row(session):
    step = _first_injection_step(session)
    with pytest.raises(DataError, match=rf"step {step}: 0 placements .* \(none in row"):
        session.end_step(step, 1.0, 1e-3)


def test_a_micro_batch_placed_twice_is_one_line(session):
    step = _first_injection_step(session)
    ids, labels = _batch(session)
    session.inject(step, 0, 0, ids, labels)
    session.inject(step, 0, 0, ids, labels)
    with pytest.raises(DataError, match=rf"step {step}: .* \(some more than once\)"):
        session.end_step(step, 1.0, 1e-3)
