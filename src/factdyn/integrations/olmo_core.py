"""factdyn inside OLMo-core's ``Trainer``: a ``Callback``.

OLMo-core's trainer calls its callbacks around each step: ``pre_train`` after it loaded a
checkpoint, ``pre_step(batch)`` with the rank's batch dict just before the train module splits
it into micro-batches and trains on it (the same dict: what the callback puts in it is what is
trained on), ``post_train_batch`` after the optimizer step, ``post_checkpoint_saved`` and
``close``. :class:`FactdynCallback` hangs a :class:`~factdyn.integrations.core.Session` on
these hooks: it places the step's injections into the batch one micro-batch at a time, with
rows numbered in the data loader's order (:func:`global_rows`), scores θ_0 before the first
update and θ_t after update t on factdyn's evaluation schedule, and keeps its state in the
trainer's checkpoints (``state_dict``/``load_state_dict``), so a resumed run's log continues
exactly. Its priority puts it before OLMo-core's checkpointer: θ_t is scored before it is saved.

Steps: factdyn's update t is OLMo-core's ``global_step`` ``offset + t + 1``, where ``offset``
is the trainer's step when the run began (0 for a fresh run; a run continued from a loaded
checkpoint starts counting there).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from olmo_core.data.utils import get_labels
from olmo_core.train.callbacks import Callback
from olmo_core.train.common import TRAIN_CE_LOSS_METRIC

from factdyn.config import RunConfig, load_config, updated
from factdyn.errors import DataError
from factdyn.inject.placement import IGNORE
from factdyn.integrations.core import Session
from factdyn.train.distributed import World, all_reduce_sum
from factdyn.train.plan import load_tokenizer


class OlmoCoreLM(torch.nn.Module):
    """An OLMo-core ``Transformer`` called the way factdyn's scorer calls a causal LM:
    ``model(input_ids=..., attention_mask=..., logits_to_keep=K).logits``. The scorer pads on
    the right, and a causal model's positions before the padding never attend to it, so the
    mask (which OLMo-core's forward does not take) changes no score read and is dropped."""

    # the scorer runs it under no_grad, not inference_mode: what its forward leaves behind
    # (DDP's buffers, sharded parameters) must stay usable by the training after it
    scored_under_no_grad = True

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask=None, logits_to_keep: int = 0):
        del attention_mask
        return SimpleNamespace(logits=self.model(input_ids, logits_to_keep=logits_to_keep))


def micro_rows(train_module, batch_rows: int, width: int) -> int:
    """Rows per micro-batch as the train module will split the rank's batch
    (``rank_microbatch_size`` tokens; the whole batch when it has none)."""
    tokens = getattr(train_module, "rank_microbatch_size", None)
    return min(batch_rows, tokens // width) if tokens else batch_rows


def global_rows(micro: int, per: int, rank: int, world_size: int, n: int) -> list[int]:
    """The global rows of the ``n`` rows of micro-batch ``micro`` on ``rank``. OLMo-core's
    data loader deals instance j of a step's global batch to rank j mod W, as that rank's row
    j // W, and the train module cuts a rank's rows into micro-batches of ``per``: row r is
    then the r-th sequence of the step in the loader's data order, whatever W and ``per``."""
    return [(micro * per + i) * world_size + rank for i in range(n)]


def unshifted_labels(batch: dict, ignore: int) -> torch.Tensor:
    """The batch's labels aligned with its ``input_ids`` (label p is the target of token p's
    predecessor, as factdyn's placement moves them with the tokens): OLMo-core's own labels
    (given, or its ``get_labels`` of the batch's masks) shifted right by one."""
    labels = batch["labels"] if "labels" in batch else get_labels(batch, label_ignore_index=ignore)
    return torch.cat([batch["input_ids"][:, :1], labels[:, :-1]], dim=1)


DOC_LENS = (
    "OLMo-core's intra-document masking (doc_lens in the batch) does not follow factdyn's "
    "injections: build the dataset without generate_doc_lengths"
)


def _is_sharded(model: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return any(isinstance(m, FSDPModule) for m in model.modules())


@dataclass
class FactdynCallback(Callback):
    """factdyn's injections and probe log in an OLMo-core run. ``config``: a factdyn RunConfig
    (or its YAML path) for the items, injection schedule and evaluation (``data.seq_len`` =
    the trainer's sequence length); the trainer supplies the steps, the global batch and the
    learning rate. ``out``: the run directory. ``tokenizer``: the tokenizer the data was
    tokenized with (an object or its path / hub id). Rerun with a checkpoint in the trainer's
    save folder, it resumes the run directory; without one it starts a new run (an existing
    run directory is refused)."""

    config: RunConfig | str | Path
    out: str | Path
    tokenizer: Any
    model_name: str | None = None  # meta.json's model; None: the config's model.name
    priority: ClassVar[int] = 2  # before the checkpointer (1): θ_t is scored, then saved
    session: Session | None = field(default=None, init=False, repr=False)
    scored: OlmoCoreLM | None = field(default=None, init=False, repr=False)
    offset: int = field(default=0, init=False, repr=False)
    _restored: dict | None = field(default=None, init=False, repr=False)
    _complete: bool = field(default=False, init=False, repr=False)

    # -- checkpoints ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        if self.session is None:
            return {}
        return {"offset": self.offset, "session": self.session.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Called by the trainer's checkpoint load, before ``pre_train``: kept until then."""
        self._restored = dict(state_dict) if state_dict else None

    def post_checkpoint_saved(self, path) -> None:
        """meta.json's steps_done: the step in the checkpoint's name, not the trainer's step
        now (an asynchronous save reports a step or more later)."""
        name = self.trainer.checkpointer.CHECKPOINT_DIR.format(step=r"(\d+)")
        saved = re.fullmatch(name, PurePosixPath(str(path).rstrip("/")).name)
        if self.session is not None and saved is not None:
            self.session.saved(int(saved.group(1)) - self.offset)

    # -- the run ----------------------------------------------------------------------------

    def _world(self) -> World:
        loader, module = self.trainer.data_loader, self.trainer.train_module
        device = getattr(module, "device", None) or next(module.model.parameters()).device
        return World(loader.dp_rank, loader.dp_world_size, torch.device(device))

    def _run_config(self, sharded: bool) -> RunConfig:
        cfg = self.config if isinstance(self.config, RunConfig) else load_config(self.config)
        if sharded and not cfg.model.fsdp:  # every rank in every scoring pass
            cfg = updated(cfg, "OLMo-core's FSDP", model={"fsdp": True})
        return cfg

    def _batch_size(self, seq_len: int) -> int:
        """Sequences per update over all ranks, from the data loader's global batch (in
        tokens), its sequences checked to be ``data.seq_len`` long where the loader says."""
        loader = self.trainer.data_loader
        dataset = getattr(loader, "dataset", None)
        if getattr(dataset, "_generate_doc_lengths", False):  # said before anything is written
            raise DataError(DOC_LENS)
        length = getattr(dataset, "sequence_length", seq_len)
        if length != seq_len:
            raise DataError(
                f"config, field 'data.seq_len': {seq_len}, but the trainer's data loader reads "
                f"sequences of {length} tokens: set data.seq_len={length}"
            )
        tokens = loader.global_batch_size
        if tokens % seq_len:
            raise DataError(
                f"config, field 'data.seq_len': {seq_len} does not divide the trainer's global "
                f"batch of {tokens} tokens: set it to the trainer's sequence length"
            )
        return tokens // seq_len

    def pre_train(self) -> None:
        """Start (or resume) the session, every input checked before anything is written,
        and score θ_0 of a new run."""
        trainer, module = self.trainer, self.trainer.train_module
        restored, self._restored = self._restored, None
        self.offset = int(restored["offset"]) if restored else trainer.global_step
        if trainer.max_steps is None:
            raise DataError("the trainer's max_duration must be known in steps for factdyn")
        tokenizer = self.tokenizer
        if isinstance(tokenizer, (str, Path)):
            tokenizer = load_tokenizer(str(tokenizer), field="tokenizer")
        cfg = self._run_config(_is_sharded(module.model))
        optim = getattr(module, "optim", None)
        lr = optim.param_groups[0].get("initial_lr", optim.param_groups[0]["lr"]) if optim else None
        self.session = Session.prepare(
            cfg,
            Path(self.out),
            tokenizer=tokenizer,
            world=self._world(),
            batch_size=self._batch_size(cfg.data.seq_len),
            steps=trainer.max_steps - self.offset,
            model_name=self.model_name or cfg.model.name or "olmo-core",
            lr=float(lr) if lr is not None else None,
            loop="olmo_core.train.Trainer",
        )
        n_parameters = sum(p.numel() for p in module.model.parameters())
        self.session.open(restored is not None, n_parameters)
        self.scored = OlmoCoreLM(module.model)
        if restored:
            self.session.load_state_dict(restored["session"])
        else:
            self.session.score(0, self.scored)

    def pre_step(self, batch: dict[str, Any]) -> None:
        """Place update t's injections into the rank's batch, micro-batch by micro-batch; the
        labels follow the tokens (IGNORE where replace pads)."""
        session, step = self.session, self.step - self.offset - 1
        if session is None or step not in session.by_step:
            return
        if "doc_lens" in batch:
            raise DataError(DOC_LENS)
        module = self.trainer.train_module
        ignore = getattr(module, "label_ignore_index", IGNORE)
        ids, mask = batch["input_ids"], batch.get("attention_mask")
        labels = unshifted_labels(batch, ignore)
        per, world = micro_rows(module, *ids.shape), session.world
        parts = []
        for k, i in enumerate(range(0, len(ids), per)):
            local = [t[i : i + per] for t in (ids, labels, mask) if t is not None]
            rows = global_rows(k, per, world.rank, world.size, len(local[0]))
            parts.append(session.inject(step, k, rows, *local))
        placed = [torch.cat(column) for column in zip(*parts, strict=True)]
        new_labels = placed[1].masked_fill(placed[1] == IGNORE, ignore)
        batch["input_ids"] = placed[0]
        batch["labels"] = F.pad(new_labels[:, 1:], (0, 1), value=ignore)
        if mask is not None:
            batch["attention_mask"] = placed[2]

    def post_train_batch(self) -> None:
        """After update t: its loss (the ranks' mean, as OLMo-core logs it) and lr into
        train.npy, the provenance of its injections, then θ_{t+1} scored if logged."""
        session, step = self.session, self.step - self.offset - 1
        if session is None:
            return
        loss = self.trainer.get_metric(TRAIN_CE_LOSS_METRIC)  # None for a skipped step
        loss = math.nan if loss is None else float(loss)
        loss = all_reduce_sum(loss, session.world) / session.world.size
        optim = getattr(self.trainer.train_module, "optim", None)
        lr = float(optim.param_groups[0]["lr"]) if optim is not None else math.nan
        session.end_step(step, loss, lr)
        session.score(step + 1, self.scored)

    def post_train(self) -> None:
        self._complete = True

    def close(self) -> None:
        """Always, last: meta.json says done after the last update, else the run stays
        resumable; the run directory's lock is released."""
        session = self.session
        if session is not None:
            session.finish(self._complete and self.step - self.offset >= session.cfg.train.steps)
