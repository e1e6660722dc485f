"""The training loop: one optimizer update per step, injections placed into chosen batches.

Everything a step needs is a function of the step number (data position, injected rows,
learning rate), and everything else (weights, AdamW moments) is in the checkpoint, so a run
killed anywhere resumes to the same log as one that never stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from factdyn.errors import TrainingError
from factdyn.inject.placement import IGNORE, apply_placements
from factdyn.train.distributed import World, all_reduce_sum
from factdyn.train.lr import lr_at


@dataclass
class Batcher:
    """Builds this rank's rows of the global batch of a step, injections included."""

    source: object  # factdyn.data.corpus.SequenceSource
    start: int
    batch_size: int
    placements: dict  # step -> DataFrame of that step's injections
    tokens: dict
    mode: str
    pad_id: int
    world: World

    @property
    def rows(self) -> range:
        per = self.batch_size // self.world.size
        return range(self.world.rank * per, (self.world.rank + 1) * per)

    def __call__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.rows
        first = self.start + step * self.batch_size
        batch = np.stack([self.source.sequence(first + r) for r in rows])
        pl = self.placements.get(step)
        if pl is None:
            return batch, batch
        mine = pl[(pl.row >= rows.start) & (pl.row < rows.stop)].assign(
            row=lambda d: d.row - rows.start
        )
        return apply_placements(batch, mine, self.tokens, self.mode, self.pad_id)


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


def make_optimizer(
    model: torch.nn.Module, betas, eps: float, weight_decay: float
) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        model.parameters(), lr=0.0, betas=tuple(betas), eps=eps, weight_decay=weight_decay
    )


def run_loop(
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batcher: Callable[[int], tuple[np.ndarray, np.ndarray]],
    start_step: int,
    total_steps: int,
    lr_kwargs: dict,
    schedule_start: int,
    micro_batch: int,
    grad_clip: float | None,
    world: World,
    tokens_per_step: int,
    on_step_start: Callable[[int], None],
    on_step_end: Callable[[int, float, float], None],
    autocast_dtype: torch.dtype | None = None,
    desc: str = "train",
) -> None:
    """Steps ``start_step .. total_steps - 1``, with hooks before (θ_t) and after each update."""
    bar = tqdm(
        total=total_steps,
        initial=start_step,
        desc=desc,
        unit="step",
        disable=not world.main,
        dynamic_ncols=True,
    )
    t0, n0 = time.perf_counter(), start_step
    for step in range(start_step, total_steps):
        on_step_start(step)
        lr = lr_at(schedule_start + step, **lr_kwargs)
        ids, labels = batcher(step)
        try:
            loss = train_step(
                model,
                optimizer,
                ids,
                labels,
                lr=lr,
                micro_batch=micro_batch,
                grad_clip=grad_clip,
                world=world,
                autocast_dtype=autocast_dtype,
            )
        except TrainingError as e:
            bar.close()
            raise TrainingError(f"step {step}: {e}") from None
        on_step_end(step, loss, lr)
        rate = (step + 1 - n0) * tokens_per_step / max(time.perf_counter() - t0, 1e-9)
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{rate:,.0f}", refresh=False)
        bar.update(1)
    on_step_start(total_steps)
    bar.close()
