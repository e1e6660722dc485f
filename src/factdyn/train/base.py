"""``factdyn pretrain``: the tiny base model that the offline experiments continue from.

It is pretrained with a warmup + decay schedule that ends at ``min_lr_ratio * lr``; the saved
state records that final rate and the data position, so an experiment continues the same
schedule (held constant) and reads the corpus from where pretraining stopped: no jump in
learning rate, no re-read text. ``settle_steps`` > 0 adds updates at that rate with
the continuation's smaller batch, so that neither does the batch size jump: the demo's runs,
at 4 sequences after pretraining's 16, begin with a loss spike of about 0.2 nat over their
first 20 updates while AdamW's moments catch up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from factdyn import progress
from factdyn.config import BaseConfig, DataConfig
from factdyn.files import output_dir, write_json_atomic
from factdyn.train import checkpoint as ckpt
from factdyn.train.callbacks import Callback
from factdyn.train.distributed import World
from factdyn.train.loop import LoopConfig, make_optimizer, run_loop


def build_model(cfg: BaseConfig, vocab_size: int, eos_id: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(cfg.seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=max(2 * cfg.seq_len, 512),
        tie_word_embeddings=True,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    return LlamaForCausalLM(config)


STAGES = "stages"  # the snapshots' folder inside a base


def stage_path(base: Path, step: int) -> Path:
    """Where the snapshot of ``base`` after ``step`` updates lives."""
    return Path(base) / STAGES / f"step-{step:06d}"


def snapshot_steps(cfg: BaseConfig) -> list[int]:
    """The steps (after that many updates) at which pretraining saves a snapshot."""
    return sorted({max(1, round(f * cfg.steps)) for f in cfg.snapshots} - {cfg.steps})


class Snapshots(Callback):
    """Saves θ_t and AdamW at the snapshot steps as complete bases of their own: an earlier
    pretraining stage that a run continues like the final base (its lr, its data position)."""

    def __init__(self, out: Path, steps: list[int], model, opt, tokenizer, state: Callable):
        self.out, self.steps, self.state = out, set(steps), state
        self.model, self.opt, self.tokenizer = model, opt, tokenizer

    def on_step_start(self, step: int, model: torch.nn.Module) -> None:
        if step in self.steps:
            path = stage_path(self.out, step)
            path.mkdir(parents=True)
            states = ckpt.full_state(self.model, self.opt)
            ckpt.save_model(path, self.model, states, self.state(step), self.tokenizer)


class LossHistory(Callback):
    """Every update's loss, kept in memory (pretraining writes them once at the end)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_step_end(self, step: int, loss: float, lr: float) -> None:
        self.losses.append(loss)


def loop_configs(cfg: BaseConfig) -> tuple[LoopConfig, LoopConfig]:
    """Pretraining's loop (warmup and decay to ``min_lr_ratio * lr``) and settling's (the
    updates after it, at the final rate with the smaller batch)."""
    loop = LoopConfig(
        total_steps=cfg.steps,
        micro_batch=cfg.batch_size,
        grad_clip=cfg.grad_clip,
        lr_kwargs={
            "peak": cfg.lr,
            "schedule": cfg.schedule,
            "warmup": cfg.warmup_steps,
            "total": cfg.steps,
            "min_ratio": cfg.min_lr_ratio,
        },
        schedule_start=0,
        tokens_per_step=cfg.batch_size * cfg.seq_len,
        desc="pretrain",
    )
    settle = replace(
        loop,
        total_steps=cfg.steps + cfg.settle_steps,
        micro_batch=cfg.settle_batch_size,
        tokens_per_step=cfg.settle_batch_size * cfg.seq_len,
        desc="settle",
    )
    return loop, settle


def pretrain(world_dir: Path, out: Path, cfg: BaseConfig) -> Path:
    """Train from scratch on the world's corpus; write a resumable HF checkpoint to ``out``
    (a new folder whole; in an existing one only the checkpoint's files are replaced)."""
    from transformers import AutoTokenizer

    from factdyn.data.sources import build_source

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    progress.quiet_other_bars()  # transformers' "Writing model shards" at every snapshot
    tokenizer = AutoTokenizer.from_pretrained(world_dir / "tokenizer")
    source = build_source(
        DataConfig(source="world", path=str(world_dir), seq_len=cfg.seq_len, seed=cfg.seed),
        tokenizer,
    )
    progress.phase(
        f"pretraining the tiny base: {cfg.steps} steps"
        + (f" + {cfg.settle_steps} settling" if cfg.settle_steps else "")
    )
    model = build_model(cfg, len(tokenizer), tokenizer.eos_token_id)
    model.train()
    opt = make_optimizer(model, (0.9, 0.95), 1e-8, cfg.weight_decay)
    loop, settle = loop_configs(cfg)
    history = LossHistory()

    def position(step: int) -> int:
        """Sequences read before update ``step``: the schedule's batches, then settling's."""
        done = min(step, cfg.steps)
        return done * cfg.batch_size + (step - done) * cfg.settle_batch_size

    def state(step: int) -> dict:
        return {
            "step": step,
            "lr": loop.lr(step),  # the next update's: what a continuation holds constant
            "data_position": position(step),
            "seq_len": cfg.seq_len,
            "corpus_sequences": source.n_sequences,
            "config": cfg.model_dump(),
            "lineage": out.name,  # one model's stages share it (factdyn reproduce's stage axis)
        }

    def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
        start = position(step)
        b = np.stack([source.sequence(i) for i in range(start, position(step + 1))])
        return b, b

    with output_dir(out) as tmp:
        snaps = Snapshots(tmp, snapshot_steps(cfg), model, opt, tokenizer, state)
        world = World(0, 1, torch.device("cpu"))
        run_loop(model, opt, batch, 0, loop, world, [history, snaps])
        if cfg.settle_steps:
            run_loop(model, opt, batch, cfg.steps, settle, world, [history])
        losses = history.losses
        final = {
            **state(settle.total_steps),
            "final_loss": sum(losses[-20:]) / max(len(losses[-20:]), 1),
        }
        write_json_atomic(tmp / "pretrain_loss.json", losses, indent=None)
        # last: its manifest (verified when a run loads this base) covers every file
        ckpt.save_model(tmp, model, ckpt.full_state(model, opt), final, tokenizer)
    return out
