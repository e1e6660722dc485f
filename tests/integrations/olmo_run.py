"""One OLMo-core Trainer run with factdyn's callback, on the toy world: a tiny OLMo 2-style
model built by OLMo-core, its data a token file read by OLMo-core's own data loader. The same
weights (converted to a Hugging Face model), token file, data order (OLMo-core's global
indices, which factdyn's ``olmo`` source reads), items, schedule and optimizer make factdyn's
own loop's run under :func:`settings`. Imported by the tests (one process) and run by torchrun
(``python -m torch.distributed.run ... olmo_run.py WORLD ROOT OUT MICRO ddp|fsdp``:
:func:`main`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from loops import shared_settings

STEPS, BATCH, SEQ, MICRO = 10, 8, 64, 4


def settings(world: Path, data: dict[str, Path], *extra: str) -> list[str]:
    """The run's config as --set strings: factdyn's loop reads all of them; the callback the
    items, injections and evaluation (the trainer says the rest, set to agree)."""
    return [
        f"data.path={data['index']}",
        "data.source=olmo",
        f"data.files=[{data['tokens']}]",
        f"injection.items={world / 'knowledge.json'}",
        f"model.name={data['hf']}",
        f"data.seq_len={SEQ}",
        *shared_settings(BATCH, MICRO, STEPS),
        *extra,
    ]


def model_config(vocab_size: int):
    """An OLMo 2 block (reordered norms, QK-norm) of 2 layers, 32 wide: OLMo-core converts
    it to transformers' Olmo2ForCausalLM."""
    from olmo_core.nn.transformer import TransformerBlockType, TransformerConfig

    return TransformerConfig.llama_like(
        d_model=32,
        vocab_size=vocab_size,
        n_layers=2,
        n_heads=4,
        qk_norm=True,
        block_name=TransformerBlockType.reordered_norm,
        layer_norm_eps=1e-6,
        hidden_size_multiple_of=16,
    )


def prepare(world: Path, root: Path) -> dict[str, Path]:
    """The token file (OLMo-core's format: raw uint16), θ_0 (OLMo-core's state dict and
    its Hugging Face copy with the tokenizer, factdyn's loop's base) and the data order."""
    from olmo_core.nn.hf.config import get_hf_config
    from olmo_core.nn.hf.convert import convert_state_to_hf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(world / "tokenizer")
    with open(world / "corpus" / "shard-00000.jsonl") as f:
        docs = [json.loads(line)["text"] for line in f]
    eos = [tok.eos_token_id]
    ids = np.concatenate([tok(d, add_special_tokens=False)["input_ids"] + eos for d in docs])
    out = {"tokens": root / "tokens.npy", "state": root / "theta0.pt", "hf": root / "hf"}
    ids.astype(np.uint16).tofile(out["tokens"])
    torch.manual_seed(0)
    model = model_config(len(tok)).build(init_device="cpu")
    model.init_weights(device=torch.device("cpu"))
    torch.save(model.state_dict(), out["state"])
    hf_config = get_hf_config(model)
    hf_config.max_position_embeddings = SEQ
    hf = AutoModelForCausalLM.from_config(hf_config)
    hf.load_state_dict(convert_state_to_hf(hf_config, model.state_dict()))
    hf.save_pretrained(out["hf"])
    tok.save_pretrained(out["hf"])
    loader = data_loader(out["tokens"], root / "order", tok.eos_token_id, len(tok))
    loader.reshuffle(epoch=1)  # the trainer's first epoch: OLMo-core writes its order
    out["index"] = root / "order.u32"
    np.asarray(loader.get_global_indices(), dtype=np.uint32).tofile(out["index"])
    return out


def data_loader(tokens: Path, work: Path, eos: int, vocab_size: int, group=None, **dataset):
    from olmo_core.data import NumpyDataLoaderConfig, NumpyFSLDataset

    dataset = NumpyFSLDataset(
        tokens,
        sequence_length=SEQ,
        pad_token_id=eos,
        eos_token_id=eos,
        vocab_size=vocab_size,
        **dataset,
    )
    config = NumpyDataLoaderConfig(global_batch_size=BATCH * SEQ, seed=0, work_dir=str(work))
    return config.build(dataset, dp_process_group=group)


def trainer(
    cfg,
    data: dict[str, Path],
    root: Path,
    save_interval: int = 100,
    callbacks=(),
    micro: int = MICRO,
    parallel: str = "ddp",
):
    """An OLMo-core Trainer from θ_0 whose optimizer and batches are factdyn's loop's under
    ``cfg`` (``micro`` sequences per micro-batch and process; under torchrun, data parallel
    over gloo: ``parallel`` ddp or fsdp); its checkpoints in ``root``/ckpt."""
    from olmo_core.distributed.parallel import DataParallelType
    from olmo_core.optim import AdamWConfig
    from olmo_core.train import Duration, TrainerConfig, prepare_training_environment
    from olmo_core.train.callbacks import CheckpointerCallback
    from olmo_core.train.train_module import (
        TransformerDataParallelConfig,
        TransformerTrainModuleConfig,
    )
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
    from transformers import AutoTokenizer

    ddp = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        prepare_training_environment(seed=0, backend="gloo")
        ddp = TransformerDataParallelConfig(name=DataParallelType(parallel))

    torch.set_num_threads(1)  # a tiny model: threads only contend
    tok = AutoTokenizer.from_pretrained(data["hf"])
    model = model_config(len(tok)).build(init_device="cpu")
    optim = AdamWConfig(lr=cfg.optim.lr, betas=cfg.optim.betas, eps=cfg.optim.eps, weight_decay=0.0)
    module = TransformerTrainModuleConfig(
        rank_microbatch_size=micro * SEQ,
        max_sequence_length=SEQ,
        optim=optim,
        max_grad_norm=cfg.optim.grad_clip,
        dp_config=ddp,
    ).build(model, device=torch.device("cpu"))
    # after the build, which initializes the weights (and shards them under FSDP)
    full = StateDictOptions(full_state_dict=True)
    set_model_state_dict(module.model, torch.load(data["state"]), options=full)
    loader = data_loader(
        data["tokens"], root / "work", tok.eos_token_id, len(tok), module.dp_process_group
    )
    # no checkpoint before the first update: saving one starts AdamW's step count at 1 (torch's
    # distributed checkpoint steps an empty optimizer with lr 0 to create its state), so that
    # every update after it differs from factdyn's loop's (the first is 0.73 × lr)
    checkpointer = CheckpointerCallback(save_interval=save_interval, pre_train_checkpoint=False)
    return TrainerConfig(
        save_folder=str(root / "ckpt"),
        max_duration=Duration.steps(cfg.train.steps),
        device="cpu",
        callbacks={"checkpointer": checkpointer, **dict(callbacks)},
    ).build(module, loader)


def main(world: str, root: str, out: str, micro: str, parallel: str = "ddp") -> None:
    """The run of :func:`prepare`'s files in ``root`` (of the toy ``world``), with ``micro``
    sequences per micro-batch and process, into ``out``/run."""
    from factdyn.config import load_config
    from factdyn.integrations.olmo_core import FactdynCallback

    names = {"tokens": "tokens.npy", "state": "theta0.pt", "hf": "hf", "index": "order.u32"}
    data = {k: Path(root) / v for k, v in names.items()}
    cfg = load_config(None, settings(Path(world), data))
    t = trainer(cfg, data, Path(out), micro=int(micro), parallel=parallel)
    t.add_callback("factdyn", FactdynCallback(cfg, Path(out) / "run", data["hf"]))
    t.fit()


if __name__ == "__main__":
    main(*sys.argv[1:])
