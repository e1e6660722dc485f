"""factdyn inside a Hugging Face ``Trainer``: one call, :func:`attach`.

What it does to the Trainer instance (nothing else is changed):

- ``get_batch_samples`` (the Trainer fetches the micro-batches of one update through it, then
  counts their loss tokens) is wrapped so that each micro-batch, as it is fetched, gets the
  injections of its rows before the Trainer counts them: replace mode changes the count.
  Fetching happens in the training process after the dataloader, so dataloader workers,
  prefetching and the batches skipped on resume all see the Trainer's own data untouched.
- ``training_step`` is wrapped to add up the loss it returns, for train.npy.
- a :class:`FactdynCallback` scores θ_0 at ``on_train_begin`` and θ_t at ``on_step_end``,
  and keeps factdyn's state in ``TrainerState.stateful_callbacks["factdyn"]``, which every
  Trainer checkpoint saves in its trainer_state.json: a resume from any Trainer checkpoint
  continues factdyn's logs from that step exactly.

The global batch, steps and world come from the TrainingArguments (per device × gradient
accumulation × processes; ``max_steps`` must be set), ``data.seq_len`` from the config and is
checked against every batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset
from transformers import Trainer, TrainerCallback

from factdyn.config import RunConfig
from factdyn.data.sources import data_start
from factdyn.errors import DataError
from factdyn.integrations.core import Session, first_row
from factdyn.train.checkpoint import read_state
from factdyn.train.distributed import World, all_reduce_sum

STATE_KEY = "factdyn"  # factdyn's entry in TrainerState.stateful_callbacks
TOKEN_KEYS = {"input_ids", "labels", "attention_mask"}  # what a batch may hold per token


class _Injecting:
    """The epoch iterator as one update's fetch sees it: micro-batch k of update ``step`` comes
    out with its injections placed."""

    def __init__(self, batches, session: Session, step: int, per: int):
        self.batches, self.session, self.step, self.per, self.micro = batches, session, step, per, 0

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        batch = next(self.batches)
        k, self.micro = self.micro, self.micro + 1
        world = self.session.world
        return inject_batch(
            self.session, batch, self.step, k, first_row(k, world.rank, self.per, world.size)
        )


def inject_batch(session: Session, batch, step: int, micro: int, first: int) -> dict:
    """The Trainer's micro-batch (a mapping) with the injections of its rows placed."""
    if "input_ids" not in batch or "labels" not in batch:
        raise DataError(
            f"step {step}: the Trainer's batch holds {', '.join(sorted(batch)) or 'nothing'}; "
            "factdyn needs input_ids and labels (a causal-LM collator, e.g. "
            "DataCollatorForLanguageModeling(tokenizer, mlm=False))"
        )
    width = batch["input_ids"].shape[-1]
    other = [
        k
        for k, v in batch.items()
        if k not in TOKEN_KEYS and getattr(v, "shape", ())[-1:] == (width,)
    ]
    if other:
        raise DataError(
            f"step {step}: the Trainer's batch holds {', '.join(sorted(other))} per token; factdyn "
            "moves only input_ids, labels and attention_mask with the text it places (packed "
            "batches with position_ids are not supported)"
        )
    mask = batch.get("attention_mask")
    placed = session.inject(step, micro, first, batch["input_ids"], batch["labels"], mask)
    return {**batch, **dict(zip(["input_ids", "labels", "attention_mask"], placed, strict=False))}


class FactdynCallback(TrainerCallback):
    """Scores the probes at factdyn's logged steps, writes the run's logs and keeps factdyn's
    state in the Trainer's checkpoints (see the module's docstring)."""

    def __init__(self, session: Session, n_parameters: int):
        self.session, self.n_parameters = session, n_parameters
        self.loss, self.lr = 0.0, float("nan")

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        s = self.session
        if state.global_step == 0:
            if s.out.is_dir() and any(p.name != ".lock" for p in s.out.iterdir()):
                raise DataError(
                    f"{s.out}: exists and is not empty, and the Trainer starts at step 0: give "
                    "attach another out, or continue that run from one of its Trainer "
                    "checkpoints (trainer.train(resume_from_checkpoint=...))"
                )
            s.open(resume=False, n_parameters=self.n_parameters)
            s.score(0, model)
        else:
            saved = state.stateful_callbacks.get(STATE_KEY)
            if not isinstance(saved, dict) or int(saved.get("step", -1)) != state.global_step:
                raise DataError(
                    f"{s.out}: the Trainer resumes at step {state.global_step} from a checkpoint "
                    "without factdyn's state of that step (made without factdyn attached, or "
                    "for another run): resume from a checkpoint of this run, or start a new one"
                )
            s.open(resume=True)
            s.load_state_dict(saved)
        state.stateful_callbacks[STATE_KEY] = s.state_dict()

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.lr = float(optimizer.param_groups[0]["lr"])  # the update's, before the scheduler

    def on_step_end(self, args, state, control, model=None, **kwargs):
        s = self.session
        loss = all_reduce_sum(float(self.loss), s.world) / s.world.size
        self.loss = 0.0
        s.end_step(state.global_step - 1, loss, self.lr)
        s.score(state.global_step, model)
        state.stateful_callbacks[STATE_KEY] = s.state_dict()

    def on_save(self, args, state, control, **kwargs):
        self.session.saved(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self.session.finish(state.global_step >= self.session.cfg.train.steps)


class Sequences(IterableDataset):
    """factdyn's background text (the config's data section) as a Trainer's dataset: the
    sequences factdyn's own loop reads, in its order from the same first position
    (:func:`factdyn.data.sources.data_start`: ``data.start``, else where the factdyn base named
    by ``model.name`` stopped, else 0), each ``{"input_ids", "labels"}``. For a run on
    factdyn's world, and for comparing the loops. One reader: with dataloader_num_workers > 1
    every worker would yield the same sequences."""

    def __init__(self, config: RunConfig, tokenizer):
        from factdyn.data.sources import build_source

        base = read_state(Path(config.model.name)) if config.model.name else {}
        self.source, self.start = (
            build_source(config.data, tokenizer),
            data_start(config.data, base),
        )

    def __iter__(self):
        i = self.start
        while True:
            ids = torch.as_tensor(np.asarray(self.source.sequence(i)), dtype=torch.long)
            i += 1
            yield {"input_ids": ids, "labels": ids.clone()}


def _world(args) -> World:
    return World(args.process_index, args.world_size, args.device)


def _plan_args(args) -> tuple[int, int]:
    """(global batch in sequences, updates) from the TrainingArguments."""
    if args.max_steps is None or args.max_steps <= 0:
        raise DataError(
            f"TrainingArguments.max_steps: {args.max_steps}; factdyn plans its injections and "
            "logged steps over a known number of updates: set max_steps"
        )
    batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    return batch, args.max_steps


def _wrap(trainer: Trainer, session: Session, callback: FactdynCallback) -> None:
    """Wrap the instance's get_batch_samples (injections before the token count) and
    training_step (the loss for train.npy)."""
    fetch, step_fn = trainer.get_batch_samples, trainer.training_step
    per = trainer.args.per_device_train_batch_size

    def get_batch_samples(epoch_iterator, num_batches, device):
        batches = _Injecting(epoch_iterator, session, trainer.state.global_step, per)
        return fetch(batches, num_batches, device)

    def training_step(model, inputs, num_items_in_batch=None):
        loss = step_fn(model, inputs, num_items_in_batch)
        callback.loss = callback.loss + loss.detach()  # no sync here: read once per update
        return loss

    trainer.get_batch_samples, trainer.training_step = get_batch_samples, training_step


def attach(
    trainer: Trainer, config: RunConfig | str | Path, out: str | Path, tokenizer=None
) -> FactdynCallback:
    """Make ``trainer`` a factdyn run writing the run directory ``out``: ``config`` (a YAML
    path or a RunConfig) gives the items, injections, evaluation and ``data.seq_len``; the
    Trainer's arguments give the rest. Every input is checked now, before training; the run
    directory is written when training begins (or continued, on resume). Returns the
    callback it added."""
    batch, steps = _plan_args(trainer.args)
    tokenizer = tokenizer if tokenizer is not None else trainer.processing_class
    if tokenizer is None:
        raise DataError(
            "attach: the Trainer has no processing_class (tokenizer): pass tokenizer= to "
            "factdyn.integrations.hf.attach"
        )
    model = trainer.model
    session = Session.prepare(
        config,
        Path(out),
        tokenizer=tokenizer,
        world=_world(trainer.args),
        batch_size=batch,
        steps=steps,
        model_name=getattr(model.config, "_name_or_path", "") or "external",
        lr=trainer.args.learning_rate,
        loop="transformers.Trainer",
    )
    callback = FactdynCallback(session, sum(p.numel() for p in model.parameters()))
    trainer.add_callback(callback)
    _wrap(trainer, session, callback)
    return callback
