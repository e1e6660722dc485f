"""``factdyn verify``: a run's record of its injections against its schedule, items and tokens.

The run is built without a model: the plan of a toy config, its directory written as
``factdyn train`` writes it, and its record made by the training loop's own Batcher over a
stand-in corpus, so every test is fast and sees what a real run records.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from factdyn.config import load_config
from factdyn.data.items import KnowledgeItem, Probe, save_items
from factdyn.inject.provenance import ProvenanceLog, item_texts
from factdyn.rundir import PROVENANCE_FILE, Status, update_meta
from factdyn.train.distributed import World
from factdyn.train.experiment import write_run_dir
from factdyn.train.loop import Batcher
from factdyn.train.plan import load_tokenizer, make_plan
from faults.harness import run_cli

STEPS = 20


def _items(n: int) -> list[KnowledgeItem]:
    def probes(k: int) -> dict:
        return {
            d: (Probe(f"The {d} probe of house {k} asks for", f"answer {k}"),)
            for d in ("memorization", "semantic", "composition")
        }

    return [
        KnowledgeItem(
            f"House {k} was founded in {1200 + 7 * k} by Ravel {k} in Quisk.",
            probes(k),
            tuple(
                f"In {1200 + 7 * k}, Ravel {k} founded house {k}, wording {v}." for v in range(4)
            ),
        )
        for k in range(n)
    ]


def _tokenizer(folder: Path, texts: list[str]) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<|endoftext|>"], initial_alphabet=alphabet
    )
    tok.train_from_iterator(texts, trainer)
    eos = "<|endoftext|>"
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=eos).save_pretrained(
        folder
    )


class Corpus:
    """A stand-in background corpus: sequence i is seq_len copies of one id."""

    def __init__(self, seq_len: int):
        self.seq_len = seq_len

    def sequence(self, i: int) -> np.ndarray:
        return np.full(self.seq_len, 5 + i % 50, dtype=np.int64)


def build_run(root: Path) -> Path:
    """A finished run of a toy plan with its provenance.parquet, recorded by the Batcher."""
    world, model, run = root / "world", root / "model", root / "run"
    items = _items(6)
    save_items(items, world / "knowledge.json")
    _tokenizer(model, [t for it in items for t in (it.train_context, *it.paraphrases)])
    cfg = load_config(
        None,
        [
            f"data.path={world}",
            f"model.name={model}",
            "optim.lr=1e-3",
            "data.seq_len=64",
            "train.batch_size=4",
            "train.micro_batch_size=2",
            f"train.steps={STEPS}",
            "injection.interval=4",
            "injection.n_controls=1",
            "injection.cohorts=1",
            "eval.window=2",
        ],
    )
    tokenizer = load_tokenizer(str(model))
    plan = make_plan(cfg, tokenizer)
    world1 = World(0, 1, __import__("torch").device("cpu"))
    write_run_dir(plan, run, 3 * len(items), world1, 1000, {"seed": 0, "start": 0}).release()
    batcher = Batcher(
        Corpus(cfg.data.seq_len),
        0,
        cfg.train.batch_size,
        {int(s): g for s, g in plan.placements.groupby("step")},
        plan.tokens,
        cfg.injection.placement,
        tokenizer.eos_token_id,
        world1,
        2,
        item_texts(plan.items),
        ProvenanceLog(run, main=True),
    )
    for step in range(STEPS):
        batcher(step)
    update_meta(run, status=Status.DONE, steps_done=STEPS)
    return run


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_run(tmp_path_factory.mktemp("verify"))


@pytest.fixture
def run(built: Path, tmp_path: Path) -> Path:
    """A copy of the built run, its config naming the copy's world and model."""
    shutil.copytree(built.parent, tmp_path / "copy")
    config = tmp_path / "copy" / "run" / "config.yaml"
    config.write_text(config.read_text().replace(str(built.parent), str(tmp_path / "copy")))
    return config.parent


def _world(run: Path) -> Path:
    return run.parent / "world"


def test_an_untouched_run_verifies(run):
    out = run_cli("verify", run)
    assert out.code == 0, out.stdout + out.stderr
    record = pd.read_parquet(run / PROVENANCE_FILE)
    assert len(record) == 21 and record.step.nunique() == 11  # items 0-3 five times, 4 once
    assert out.stdout.strip() == (
        "verified: 21 injections at 11 steps match the schedule and the items"
    )
    assert "tokens checked with the tokenizer of" in out.stderr


def test_the_record_is_rank_major_micro_batches_of_the_loop(run):
    record = pd.read_parquet(run / PROVENANCE_FILE)
    assert (record.micro == record.row // 2).all() and (record.micro_row == record.row % 2).all()
    assert set(record.placement) == {"prepend"} and set(record["rank"]) == {0}


@pytest.mark.parametrize(
    ("item", "variant", "field"), [(4, 0, "train_context"), (0, 2, "paraphrases[1]")]
)
def test_an_edited_item_is_named_with_its_field(run, item, variant, field):
    edited = json.loads((_world(run) / "knowledge.json").read_text())
    if variant:
        edited[item]["paraphrases"][variant - 1] += " Edited."
    else:
        edited[item]["train_context"] = edited[item]["train_context"].replace("Quisk", "Quask")
    (_world(run) / "knowledge.json").write_text(json.dumps(edited))
    out = run_cli("verify", run)
    assert out.code == 1
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and f"item {item}, field '{field}': edited since it was" in lines[0]
    assert lines[1].startswith("1 difference between")


def test_other_items_given_with_items_are_the_ones_checked(run, tmp_path):
    other = tmp_path / "other.jsonl"
    save_items(_items(3), other)  # items 3 to 5 are missing
    out = run_cli("verify", run, "--items", other)
    assert out.code == 1
    assert f"{other}, item 4: no such item (3 items)" in out.stdout


@pytest.mark.parametrize("file", ["injections.parquet", PROVENANCE_FILE])
def test_a_moved_injection_is_named_with_both_places(run, file):
    table = pd.read_parquet(run / file)
    k = table.index[(table.step == 9) & (table.item == 2)][0]
    table.loc[k, "step"] = 10
    table.to_parquet(run / file, index=False)
    out = run_cli("verify", run)
    assert out.code == 1
    scheduled, recorded = (9, 10) if file == PROVENANCE_FILE else (10, 9)
    row, start, end = table.loc[k, ["row", "token_start", "token_end"]]
    assert (
        f"item 2, variant 0: scheduled at step {scheduled}, row {row}, tokens [{start}, {end}) "
        f"(injections.parquet), but recorded at step {recorded}, row {row}"
    ) in out.stdout


def test_placed_tokens_that_are_not_the_texts_are_caught(run):
    table = pd.read_parquet(run / PROVENANCE_FILE)
    table.loc[3, "tokens_sha256"] = "0" * 64
    table.to_parquet(run / PROVENANCE_FILE, index=False)
    out = run_cli("verify", run)
    r = table.loc[3]
    assert out.code == 1
    assert f"item {r['item']}, variant {r.variant} at step {r.step}, row {r.row}" in out.stdout


def test_without_a_tokenizer_tokens_are_skipped_with_a_notice(run):
    shutil.rmtree(run.parent / "model")
    out = run_cli("verify", run, "--items", _world(run) / "knowledge.json")
    assert out.code == 0 and "tokens not checked" in out.stderr


def test_many_differences_are_capped_and_counted(run):
    table = pd.read_parquet(run / PROVENANCE_FILE)
    table["step"] += 1
    table.to_parquet(run / PROVENANCE_FILE, index=False)
    out = run_cli("verify", run)
    lines = out.stdout.strip().splitlines()
    assert out.code == 1 and len(lines) == 22
    assert lines[-2] == f"... and {len(table) - 20} more"


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda run: (run / PROVENANCE_FILE).unlink(), "made before factdyn recorded injections"),
        (lambda run: (run / "meta.json").unlink(), "not a factdyn run directory"),
        (lambda run: (run / PROVENANCE_FILE).write_text("x"), "damaged, cannot be read"),
        (lambda run: (_world(run) / "knowledge.json").write_text("[{"), "knowledge.json"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run, exits_2, damage, says):
    damage(run)
    assert says in exits_2(["verify", run])
