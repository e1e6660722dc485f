"""Side concerns of the training loop as callbacks (OLMo-core's idea, four hooks).

The loop calls, in list order: ``on_train_start(step)`` with the first step it will run,
``on_step_start(t, model)`` with θ_t before update t (and once more with θ_T after the last
update), ``on_step_end(t, loss, lr)`` after update t, ``on_train_end(T)``. Probe logging
(:class:`factdyn.train.evaluation.ProbeLogger`), checkpoints and the training log are
callbacks; so are a benchmark's timers, passed to ``train(..., callbacks=...)``. The
:class:`Checkpointer` saves and restores the components that must survive a restart
(:class:`factdyn.train.checkpoint.Stateful`), the logs among them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from factdyn import progress
from factdyn.errors import TrainingError
from factdyn.files import atomic_file
from factdyn.rundir import open_log, update_meta
from factdyn.train import checkpoint as ckpt
from factdyn.train.distributed import World, all_reduce_sum, barrier


class Callback:
    """A no-op at every hook; subclasses override what they need."""

    def on_train_start(self, step: int) -> None:
        """Before the first update the loop runs (``step`` is 0, or a resume's checkpoint)."""

    def on_step_start(self, step: int, model: torch.nn.Module) -> None:
        """θ_t: the weights before update ``step``; ``step == total`` after the last update."""

    def on_step_end(self, step: int, loss: float, lr: float) -> None:
        """After update ``step``: its token-mean loss over the global batch and its lr."""

    def on_train_end(self, step: int) -> None:
        """After the last update (``step`` = total steps)."""


def resize_log(path: Path, rows: int, keep: int) -> None:
    """``path`` as a NaN-filled log of ``rows`` rows whose first ``keep`` rows are its own
    (replaced whole, so a kill midway leaves the old file)."""
    old = np.load(path, mmap_mode="r")
    with atomic_file(path) as tmp:
        new = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=old.dtype, shape=(rows, *old.shape[1:])
        )
        new[...] = np.nan
        new[:keep] = old[:keep]
        new.flush()
        del new


class TrainLog(Callback):
    """Writes loss, lr and tokens seen of every update into ``train.npy`` (main rank). Its
    state is the updates done; restored, the log holds ``total`` rows (a resume may extend
    train.steps), the first of them its own."""

    def __init__(self, run_dir: Path, tokens_per_step: int, total: int, world: World):
        self.run_dir, self.tokens_per_step, self.main = run_dir, tokens_per_step, world.main
        self.total, self.step = total, 0
        self.log: np.memmap | None = None

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        path = self.run_dir / "train.npy"
        if self.main and np.load(path, mmap_mode="r").shape[0] != self.total:
            resize_log(path, self.total, self.step)

    def on_train_start(self, step: int) -> None:
        if self.main:
            self.log = open_log(self.run_dir, "train.npy")  # once, not per step

    def on_step_end(self, step: int, loss: float, lr: float) -> None:
        if self.log is not None:
            self.log[step] = (loss, lr, (step + 1) * self.tokens_per_step)
            self.log.flush()
        self.step = step + 1


class Checkpointer(Callback):
    """Saves θ_t (weights, AdamW state, step, and the state of every ``components``) every
    ``every`` steps and at the end; a resume starts from the newest that verifies
    (:meth:`restore`). ``trained`` is the module the optimizer steps (DDP/FSDP-wrapped), whose
    full state every rank gathers; the main rank writes. Weights with a NaN or ±inf are never
    saved: the run stops (TrainingError) with the previous checkpoint as its newest, so a
    resume does not start from poisoned weights."""

    def __init__(
        self,
        run_dir: Path,
        trained: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        every: int,
        total: int,
        keep: int,
        world: World,
        tokenizer=None,
        components: Mapping[str, ckpt.Stateful] | None = None,
    ):
        self.run_dir, self.trained, self.optimizer = run_dir, trained, optimizer
        self.every, self.total, self.keep = every, total, keep
        self.world, self.tokenizer = world, tokenizer
        self.components = dict(components or {})
        self.start = 0

    def restore(self, path: Path) -> int:
        """Continue from the checkpoint at ``path``: its AdamW moments (when saved) and every
        component's state; the step it holds."""
        ckpt.load_optimizer_state(path, self.trained, self.optimizer)
        return ckpt.restore(path, self.components)

    def on_train_start(self, step: int) -> None:
        self.start = self.last = step  # θ_start is already saved (or is the base)

    def on_step_start(self, step: int, model: torch.nn.Module) -> None:
        if step == self.start or (step % self.every and step != self.total):
            return
        self.check_finite(step, model)
        t0 = time.perf_counter()
        states = ckpt.full_state(self.trained, self.optimizer)  # collective: every rank
        if self.world.main:
            ckpt.save_checkpoint(
                self.run_dir / "checkpoints",
                model,
                states,
                ckpt.loop_state(step, self.components),
                self.keep,
                self.tokenizer,
            )
            update_meta(self.run_dir, steps_done=step)
            progress.debug(f"checkpoint step {step} saved in {time.perf_counter() - t0:.1f} s")
        self.last = step
        barrier(self.world)

    def check_finite(self, step: int, model: torch.nn.Module) -> None:
        """Every rank checks its parameters and all agree, so all stop together."""
        bad = ckpt.non_finite_parameters(model)
        if all_reduce_sum(float(len(bad)), self.world):
            kept = f"step_{self.last:07d}" if self.last else "the base model"
            raise TrainingError(
                f"step {step}: non-finite parameters ({bad[0] if bad else 'on another rank'}); "
                f"not saved, a resume starts from {kept}"
            )
