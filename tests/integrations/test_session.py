"""The Session checks that another trainer placed every planned injection of a step once:
a micro-batch it never saw, or one it placed twice, stops the run with one line naming the
step (planted on the toy world's plan, no training)."""

from __future__ import annotations

import warnings

import pytest
import torch
from hf_run import BATCH, STEPS, settings
from transformers import AutoTokenizer

from factdyn.config import load_config
from factdyn.errors import DataError
from factdyn.integrations.core import Session, run_config
from factdyn.train.distributed import World

# the same settings drive factdyn's loop, which uses what the trainer decides here
pytestmark = pytest.mark.filterwarnings("ignore:factdyn. the trainer decides")


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


def test_settings_the_trainer_decides_are_named_when_the_config_gives_them():
    """Nothing is ignored silently: a factdyn setting the trainer decides instead (its
    optimizer, its steps when they differ) is named in one warning; factdyn's own settings
    and values the trainer agrees with are not."""
    cfg = load_config(
        None,
        ["optim.weight_decay=0.1", "train.steps=200", "optim.lr=1e-3", "eval.window=5"],
    )
    with pytest.warns(UserWarning) as caught:
        decided = run_config(cfg, steps=50, batch_size=8, model_name="m", lr=1e-3)
    (message,) = [str(w.message) for w in caught]
    assert message.startswith("factdyn: the trainer decides optim.weight_decay, train.steps:")
    assert (decided.train.steps, decided.optim.lr, decided.optim.load_state) == (50, 1e-3, False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_config(load_config(None, ["eval.window=5"]), steps=50, batch_size=8, model_name="m")


def test_the_trainers_dataset_starts_where_factdyns_loop_does(toy_world, toy_base):
    """Sequences reads from data.start, else from where the factdyn base stopped reading (its
    state.json), as factdyn's own loop does; never from 0 when the base says otherwise."""
    import json

    from factdyn.integrations.hf import Sequences

    tokenizer = AutoTokenizer.from_pretrained(toy_base)
    stopped = json.loads((toy_base / "state.json").read_text())["data_position"]
    assert stopped > 0
    cfg = load_config(None, [f"data.path={toy_world}", f"model.name={toy_base}"])
    data = Sequences(cfg, tokenizer)
    first = next(iter(data))["input_ids"].tolist()
    assert data.start == stopped and first == list(data.source.sequence(stopped))
    given = Sequences(load_config(None, [f"data.path={toy_world}", "data.start=7"]), tokenizer)
    assert given.start == 7
