"""One Hugging Face Trainer run with factdyn attached, on the toy world and base: the same
items, schedule, data order and optimizer as factdyn's own loop under :func:`settings`.
Imported by the tests (one process) and run by torchrun (``python -m torch.distributed.run
... hf_run.py WORLD BASE OUT PER_DEVICE``)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from loops import shared_settings

STEPS, BATCH = 10, 8


def settings(world: Path, base: Path, *extra: str) -> list[str]:
    """The run's config, as --set strings (factdyn's loop reads all; the Trainer's run the
    items, injections and evaluation: its own arguments say the rest, set to agree)."""
    return [
        f"data.path={world}",
        f"model.name={base}",
        "data.seq_len=64",
        *shared_settings(BATCH, 2, STEPS),
        *extra,
    ]


def trainer(cfg, base: Path, ckpt: Path, per_device: int = 2, **args):
    """A Trainer whose optimizer and batches are factdyn's loop's under ``cfg``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    from factdyn.integrations.hf import Sequences

    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(base)
    world = int(__import__("os").environ.get("WORLD_SIZE", "1"))
    arguments = TrainingArguments(
        output_dir=str(ckpt),
        max_steps=cfg.train.steps,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=cfg.train.batch_size // (per_device * world),
        learning_rate=cfg.optim.lr,
        lr_scheduler_type="constant",
        weight_decay=cfg.optim.weight_decay,
        max_grad_norm=cfg.optim.grad_clip,
        adam_beta1=cfg.optim.betas[0],
        adam_beta2=cfg.optim.betas[1],
        adam_epsilon=cfg.optim.eps,
        optim="adamw_torch",
        use_cpu=True,
        ddp_backend="gloo" if world > 1 else None,
        report_to=[],
        disable_tqdm=True,
        logging_strategy="no",
        **{"save_strategy": "no", **args},
    )
    return Trainer(
        model=AutoModelForCausalLM.from_pretrained(base),
        args=arguments,
        train_dataset=Sequences(cfg, tok),
        processing_class=tok,
    )


def main(world: str, base: str, out: str, per_device: str) -> None:
    from factdyn.config import load_config
    from factdyn.integrations.hf import attach

    cfg = load_config(None, settings(Path(world), Path(base)))
    t = trainer(cfg, Path(base), Path(out) / "ckpt", int(per_device))
    attach(t, cfg, Path(out) / "run")
    t.train()


if __name__ == "__main__":
    main(*sys.argv[1:])
