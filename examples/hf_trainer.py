"""factdyn inside a Hugging Face Trainer: knowledge injected into its batches, probes scored
after every update, a factdyn run directory written.

    python examples/hf_trainer.py     # a few minutes on a CPU the first time (world and base)
    factdyn analyze runs/hf-example && factdyn report runs/hf-example

The world and the tiny base are factdyn's own (built on first use, then cached); with your
model, tokenizer and dataset the three lines marked "factdyn" are all it takes.
"""

from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

from factdyn.config import load_config
from factdyn.integrations.hf import Sequences, attach
from factdyn.train.cached import cached_base, cached_world

world = cached_world()  # the offline fictional world: its items and background text
base = cached_base(world)  # the tiny Llama base pretrained on it

# factdyn: which items, when to inject them, when to score; the Trainer gives steps and batch
config = load_config(
    None,
    [
        f"data.path={world}",  # the items (knowledge.json) and the background text
        f"model.name={base}",  # its state.json says where its pretraining stopped reading
        "data.seq_len=256",  # the width of every training sequence
        "injection.max_items=12",
        "injection.n_controls=3",  # never injected: they measure drift
        "injection.interval=10",  # each item 5 times (its scenario's count), 10 steps apart
        "injection.cohorts=1",
        "eval.window=5",
    ],
)

tokenizer = AutoTokenizer.from_pretrained(base)
trainer = Trainer(
    model=AutoModelForCausalLM.from_pretrained(base),
    args=TrainingArguments(
        output_dir="runs/hf-example-checkpoints",
        max_steps=50,  # factdyn plans over a known number of updates
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        save_steps=25,
        use_cpu=True,
        report_to=[],
    ),
    train_dataset=Sequences(config, tokenizer),  # or your own dataset of seq_len-wide rows
    processing_class=tokenizer,
)
attach(trainer, config, out="runs/hf-example")  # factdyn
trainer.train()  # after a kill: trainer.train(resume_from_checkpoint=True) continues the log
