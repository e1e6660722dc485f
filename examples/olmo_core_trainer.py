"""factdyn inside an OLMo-core Trainer: knowledge injected into its batches, probes scored
after every update, a factdyn run directory written.

    python examples/olmo_core_trainer.py     # a minute on a CPU (more the first time: the world)
    factdyn analyze runs/olmo-example && factdyn report runs/olmo-example

The world is factdyn's offline one (built on first use, then cached), its corpus written as
OLMo-core's token file; with your model, tokenizer and data the lines marked "factdyn" are all
it takes.
"""

import json
from pathlib import Path

import numpy as np
import torch
from olmo_core.data import NumpyDataLoaderConfig, NumpyFSLDataset
from olmo_core.nn.transformer import TransformerConfig
from olmo_core.optim import AdamWConfig
from olmo_core.train import Duration, TrainerConfig
from olmo_core.train.callbacks import CheckpointerCallback
from olmo_core.train.train_module import TransformerTrainModuleConfig
from transformers import AutoTokenizer

from factdyn.config import load_config
from factdyn.integrations.olmo_core import FactdynCallback
from factdyn.train.cached import cached_world

SEQ, BATCH = 256, 8
world = cached_world()  # the offline fictional world: its items, background text, tokenizer
tokenizer = AutoTokenizer.from_pretrained(world / "tokenizer")
eos = tokenizer.eos_token_id
with open(world / "corpus" / "shard-00000.jsonl") as f:  # OLMo-core's format: raw token ids
    ids = [t for line in f for t in tokenizer(json.loads(line)["text"])["input_ids"] + [eos]]
Path("runs").mkdir(exist_ok=True)
np.asarray(ids, dtype=np.uint16).tofile("runs/olmo-example-tokens.npy")

# factdyn: which items, when to inject them, when to score; the trainer gives steps and batch
config = load_config(
    None,
    [
        f"data.path={world}",  # the items (knowledge.json)
        f"data.seq_len={SEQ}",  # the width of every training sequence
        "injection.max_items=12",
        "injection.n_controls=3",  # never injected: they measure drift
        "injection.interval=10",  # each item 5 times (its scenario's count), 10 steps apart
        "injection.cohorts=1",
        "eval.window=5",
    ],
)

torch.manual_seed(0)
dataset = NumpyFSLDataset(
    "runs/olmo-example-tokens.npy",
    sequence_length=SEQ,
    pad_token_id=eos,
    eos_token_id=eos,
    vocab_size=len(tokenizer),
)
loader = NumpyDataLoaderConfig(
    global_batch_size=BATCH * SEQ, seed=0, work_dir="runs/olmo-example-work"
).build(dataset)
model = TransformerConfig.olmo2_1M(vocab_size=len(tokenizer)).build(init_device="cpu")
train_module = TransformerTrainModuleConfig(
    rank_microbatch_size=BATCH * SEQ,
    max_sequence_length=SEQ,
    optim=AdamWConfig(lr=3e-3, weight_decay=0.0),
    max_grad_norm=1.0,
).build(model, device=torch.device("cpu"))
trainer = TrainerConfig(
    save_folder="runs/olmo-example-checkpoints",
    max_duration=Duration.steps(50),  # factdyn plans over a known number of updates
    device="cpu",
    callbacks={
        "checkpointer": CheckpointerCallback(save_interval=25),
        "factdyn": FactdynCallback(config, "runs/olmo-example", tokenizer),  # factdyn
    },
).build(train_module, loader)
trainer.fit()  # after a kill, the same script continues from the newest checkpoint
