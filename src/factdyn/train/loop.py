"""The training loop: one optimizer update per step, injections placed into chosen batches.

Everything a step needs is a function of the step number (data position, injected rows,
learning rate), and everything else (weights, AdamW moments) is in the checkpoint, so a run
killed anywhere resumes to the same log as one that never stopped. Side concerns (probe
logging, checkpoints, the training log, a benchmark's timers) are callbacks
(:mod:`factdyn.train.callbacks`), so :func:`run_loop` is only the loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from factdyn import progress
from factdyn.errors import TrainingError
from factdyn.inject.placement import IGNORE, apply_placements
from factdyn.inject.provenance import ProvenanceLog, placed_records
from factdyn.train.callbacks import Callback
from factdyn.train.distributed import World, all_reduce_sum, gather_objects
from factdyn.train.lr import lr_at


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during the loop: a KeyboardInterrupt that knows how many updates were
    done, so that the command can say where the run stopped."""

    def __init__(self, step: int, total: int):
        super().__init__(f"interrupted after step {step} of {total}")
        self.step, self.total = step, total


@dataclass
class Batcher:
    """Builds this rank's rows of the global batch of a step, injections included, and
    records where each injected text landed (:mod:`factdyn.inject.provenance`). Step t
    reads the corpus from sequence ``start + t * batch_size``; its state (a
    :class:`~factdyn.train.checkpoint.Stateful`) is the next step and the data position it
    reads from."""

    source: object  # factdyn.data.corpus.SequenceSource
    start: int  # the data position of step 0
    batch_size: int
    placements: dict  # step -> DataFrame of that step's injections
    tokens: dict
    mode: str
    pad_id: int
    world: World
    micro_batch: int  # rows per forward/backward, as train_step splits this rank's rows
    texts: dict  # (item, variant) -> text, for the record's hash
    provenance: ProvenanceLog
    next_step: int = 0

    def state_dict(self) -> dict:
        position = self.start + self.next_step * self.batch_size
        return {"step": self.next_step, "position": position}

    def load_state_dict(self, state: dict) -> None:
        self.next_step = int(state["step"])
        position = int(state.get("position", self.start + self.next_step * self.batch_size))
        self.start = position - self.next_step * self.batch_size

    @property
    def rows(self) -> range:
        per = self.batch_size // self.world.size
        return range(self.world.rank * per, (self.world.rank + 1) * per)

    def __call__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        self.next_step = step + 1
        rows = self.rows
        first = self.start + step * self.batch_size
        batch = np.stack([self.source.sequence(first + r) for r in rows])
        pl = self.placements.get(step)
        if pl is None:
            return batch, batch
        mine = pl[(pl.row >= rows.start) & (pl.row < rows.stop)].assign(
            row=lambda d: d.row - rows.start
        )
        ids, labels = apply_placements(batch, mine, self.tokens, self.mode, self.pad_id)
        self.record(step, pl, ids)
        return ids, labels

    def record(self, step: int, placements, ids: np.ndarray) -> None:
        """This rank's records of the step, micro-batch by micro-batch as train_step splits
        its rows, added to the main rank's log. Every rank calls it at a step with
        injections (every rank knows those steps), since the gather is a collective."""
        rows, m = self.rows, self.micro_batch
        mine = [
            rec
            for k, i in enumerate(range(0, len(rows), m))
            for rec in placed_records(
                step,
                self.world.rank,
                k,
                placements,
                rows[i : i + m],
                ids[i : i + m],
                self.mode,
                self.texts,
            )
        ]
        parts = gather_objects(mine, self.world)
        if parts is not None:
            self.provenance.add([rec for part in parts for rec in part])


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    ids: np.ndarray,
    labels: np.ndarray,
    *,
    lr: float,
    micro_batch: int,
    grad_clip: float | None,
    world: World,
    autocast_dtype: torch.dtype | None = None,
) -> float:
    """One update on this rank's rows: token-mean loss over the *global* batch."""
    dev = world.device
    ids_t = torch.as_tensor(ids, dtype=torch.long)
    lab_t = torch.as_tensor(labels, dtype=torch.long)
    # Loss is a mean over every predicted token of the global batch, however it is split.
    n_local = int((lab_t[:, 1:] != IGNORE).sum())
    n_global = all_reduce_sum(float(n_local), world)
    scale = world.size / n_global  # DDP averages gradients over ranks
    for g in optimizer.param_groups:
        g["lr"] = lr
    total = 0.0
    chunks = range(0, len(ids_t), micro_batch)
    for k, i in enumerate(chunks):
        x = ids_t[i : i + micro_batch].to(dev)
        y = lab_t[i : i + micro_batch].to(dev)
        last = k == len(chunks) - 1
        sync = (
            model.no_sync()
            if (world.size > 1 and not last and hasattr(model, "no_sync"))
            else nullcontext()
        )
        with (
            sync,
            torch.autocast(dev.type, dtype=autocast_dtype, enabled=autocast_dtype is not None),
        ):
            logits = model(input_ids=x).logits
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)).float(),
                y[:, 1:].reshape(-1),
                ignore_index=IGNORE,
                reduction="sum",
            )
        (loss * scale).backward()
        total += loss.item()  # sync point: needed for the NaN check and the log anyway
    loss_mean = all_reduce_sum(total, world) / n_global
    if not math.isfinite(loss_mean):
        optimizer.zero_grad(set_to_none=True)
        raise TrainingError(f"non-finite loss ({loss_mean}); the last good checkpoint is kept")
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_mean


def parameter_kind(name: str, owners: Sequence[torch.nn.Module]) -> str:
    """``bias``, ``embedding``, ``norm`` or ``weight``, from the parameter's name and the
    modules holding it (a tied embedding is held by the embedding and the output layer)."""
    parts = name.split(".")
    module = parts[-2].lower() if len(parts) > 1 else ""
    if parts[-1] == "bias":
        return "bias"
    linear = any(isinstance(m, torch.nn.Linear) for m in owners)
    if any(isinstance(m, torch.nn.Embedding) for m in owners) or ("embed" in module and not linear):
        return "embedding"  # not GPT-NeoX's embed_out: an output Linear
    norm_type = any("norm" in type(m).__name__.lower() for m in owners)
    if norm_type or "norm" in module or module.startswith("ln"):
        return "norm"
    return "weight"


def make_optimizer(
    model: torch.nn.Module, betas, eps: float, weight_decay: float, decay_exclude=()
) -> torch.optim.AdamW:
    """AdamW with a decayed and a not-decayed group: the kinds in ``decay_exclude`` are not
    decayed (the base model's own recipe); one group when nothing is excluded."""
    owners: dict[int, list[torch.nn.Module]] = {}
    for module in model.modules():
        for p in module.parameters(recurse=False):
            owners.setdefault(id(p), []).append(module)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        kind = parameter_kind(name, owners[id(p)])
        (no_decay if kind in decay_exclude else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, lr=0.0, betas=tuple(betas), eps=eps)


@dataclass(frozen=True)
class LoopConfig:
    """What the loop needs besides model, data and callbacks."""

    total_steps: int
    micro_batch: int  # sequences per forward/backward on this rank
    grad_clip: float | None
    lr_kwargs: dict  # factdyn.train.lr.lr_at's keywords
    schedule_start: int  # schedule position of step 0
    tokens_per_step: int  # global batch, for the progress bar's rate
    autocast_dtype: torch.dtype | None = None
    desc: str = "train"

    def lr(self, step: int) -> float:
        return lr_at(self.schedule_start + step, **self.lr_kwargs)


def run_loop(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batcher: Callable[[int], tuple[np.ndarray, np.ndarray]],
    start_step: int,
    cfg: LoopConfig,
    world: World,
    callbacks: Sequence[Callback] = (),
    trained: torch.nn.Module | None = None,
) -> None:
    """Steps ``start_step .. total - 1``. ``trained`` (default ``model``) is what the update
    runs through, wrapped for DDP/FSDP or compiled; callbacks see the plain ``model``."""
    trained = model if trained is None else trained
    bar = tqdm(
        total=cfg.total_steps,
        initial=start_step,
        desc=cfg.desc,
        unit="step",
        disable=not world.main or progress.quiet(),
        dynamic_ncols=True,
    )
    done = start_step  # updates completed
    try:
        for cb in callbacks:
            cb.on_train_start(start_step)
        t0, n0 = time.perf_counter(), start_step
        for step in range(start_step, cfg.total_steps):
            for cb in callbacks:
                cb.on_step_start(step, model)
            lr = cfg.lr(step)
            ids, labels = batcher(step)
            try:
                loss = train_step(
                    trained,
                    optimizer,
                    ids,
                    labels,
                    lr=lr,
                    micro_batch=cfg.micro_batch,
                    grad_clip=cfg.grad_clip,
                    world=world,
                    autocast_dtype=cfg.autocast_dtype,
                )
            except TrainingError as e:
                raise TrainingError(f"step {step}: {e}") from None
            for cb in callbacks:
                cb.on_step_end(step, loss, lr)
            done = step + 1
            rate = (step + 1 - n0) * cfg.tokens_per_step / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{rate:,.0f}", refresh=False)
            bar.update(1)
        for cb in callbacks:
            cb.on_step_start(cfg.total_steps, model)  # θ_T: the final weights
    except KeyboardInterrupt as e:
        if isinstance(e, Interrupted):
            raise
        raise Interrupted(done, cfg.total_steps) from None
    finally:
        bar.close()  # also when a step or a callback (the checkpointer's NaN guard) stops it
    for cb in callbacks:
        cb.on_train_end(cfg.total_steps)
