"""factdyn inside a Hugging Face Trainer: one method, two loops, one answer; resume from a
Trainer checkpoint; two torchrun processes; bad input in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hf_run import STEPS, settings, trainer
from loops import assert_resumed_like_whole, assert_same_run

from factdyn import load_run
from factdyn.analyze.populations import analyze_run
from factdyn.config import load_config, updated
from factdyn.errors import DataError
from factdyn.integrations.hf import attach
from factdyn.rundir import PROVENANCE_FILE
from factdyn.train.experiment import train
from factdyn.train.verify import verify_run

# the same settings drive factdyn's loop, which uses what the trainer decides here
pytestmark = pytest.mark.filterwarnings("ignore:factdyn. the trainer decides")

HERE = Path(__file__).parent
PLACED = ["step", "row", "item", "variant", "token_start", "token_end", "tokens_sha256"]


@pytest.fixture(scope="module")
def runs(toy_world, toy_base, tmp_path_factory) -> dict[str, Path]:
    """The same run by factdyn's own loop and by the Trainer with factdyn attached (replace
    mode: the Trainer counts loss tokens after the injections change them)."""
    root = tmp_path_factory.mktemp("hf")
    cfg = load_config(None, settings(toy_world, toy_base, "injection.placement=replace"))
    own = train(cfg, root / "own")
    t = trainer(cfg, toy_base, root / "ckpt")
    attach(t, cfg, root / "hf")
    t.train()
    return {"own": own, "hf": root / "hf", "root": root}


def test_the_trainer_and_factdyns_loop_log_the_same(runs):
    own, hf = load_run(runs["own"]), load_run(runs["hf"])
    assert_same_run(own, hf, STEPS)
    placed = pd.read_parquet(runs["hf"] / PROVENANCE_FILE)
    assert placed[["step", "row", "item"]].equals(own.injections[["step", "row", "item"]])
    assert (placed.placement == "replace").all() and (placed["rank"] == 0).all()
    found = verify_run(runs["hf"])  # factdyn verify: the record matches the plan and items
    assert found.injections == len(own.injections) and found.differences == []
    if (runs["own"] / PROVENANCE_FILE).is_file():  # factdyn's loop records the same
        mine = pd.read_parquet(runs["own"] / PROVENANCE_FILE)
        assert mine[PLACED].equals(placed[PLACED])
    a, b = analyze_run(own, resamples=0), analyze_run(hf, resamples=0)
    for pop in a.populations:
        other = b.get(pop.scenario, pop.depth)
        np.testing.assert_allclose(other.effectivity, pop.effectivity, atol=1e-4)
        np.testing.assert_allclose(other.retainability, pop.retainability, atol=1e-4)
    pd.testing.assert_frame_equal(a.trajectories, b.trajectories, atol=1e-4, check_exact=False)


class _Kill(KeyboardInterrupt):
    pass


def test_a_resume_from_a_trainer_checkpoint_continues_the_log_exactly(
    runs, toy_world, toy_base, tmp_path
):
    from transformers import TrainerCallback

    class KillAt(TrainerCallback):  # after checkpoint-4, before checkpoint-8: work lost
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 6:
                raise _Kill

    cfg = load_config(None, settings(toy_world, toy_base, "injection.placement=replace"))
    saves = {"save_strategy": "steps", "save_steps": 4}
    first = trainer(cfg, toy_base, tmp_path / "ckpt", **saves)
    cb = attach(first, cfg, tmp_path / "run")
    first.add_callback(KillAt())
    with pytest.raises(_Kill):
        first.train()
    cb.session.finish(False)  # what the process's end does to its lock
    assert load_run(tmp_path / "run").meta["steps_done"] == 4
    again = trainer(cfg, toy_base, tmp_path / "ckpt", **saves)
    attach(again, cfg, tmp_path / "run")
    again.train(resume_from_checkpoint=True)
    assert_resumed_like_whole(runs["hf"], tmp_path / "run", atol=1e-5)


def test_two_torchrun_processes_log_what_one_does(runs, toy_world, toy_base, tmp_path):
    """prepend mode, one sequence per process and micro-batch (rows interleave over ranks)."""
    one = runs["root"] / "one-prepend"
    if not one.exists():
        cfg = load_config(None, settings(toy_world, toy_base))
        t = trainer(cfg, toy_base, one / "ckpt")
        attach(t, cfg, one / "run")
        t.train()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    cmd += [str(HERE / "hf_run.py"), str(toy_world), str(toy_base), str(tmp_path), "1"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:6000]
    a, b = load_run(one / "run"), load_run(tmp_path / "run")
    assert b.meta["world_size"] == 2 and b.meta["status"] == "done"
    np.testing.assert_allclose(b.logprobs, a.logprobs, atol=1e-4, rtol=0)
    np.testing.assert_allclose(b.train.loss, a.train.loss, atol=1e-5, rtol=0)
    pa = pd.read_parquet(one / "run" / PROVENANCE_FILE)
    pb = pd.read_parquet(tmp_path / "run" / PROVENANCE_FILE)
    assert pa[PLACED].equals(pb[PLACED])
    assert set(pb["rank"]) == {0, 1} and (pb.row % 2 == pb["rank"]).all()
    assert verify_run(tmp_path / "run").differences == []


def test_a_trainer_without_max_steps_is_refused_in_one_line(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

    model = LlamaForCausalLM(
        LlamaConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            vocab_size=64,
        )
    )
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    with pytest.raises(DataError, match="max_steps") as e:
        attach(Trainer(model=model, args=args), load_config(None), tmp_path / "run")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "run").exists()


def test_a_batch_wider_or_narrower_than_seq_len_is_refused_in_one_line(
    toy_world, toy_base, tmp_path
):
    cfg = load_config(None, settings(toy_world, toy_base, "data.seq_len=48"))
    t = trainer(cfg, toy_base, tmp_path / "ckpt")  # the sequences are 48 wide: the world's
    attach(t, updated(cfg, data={"seq_len": 64}), tmp_path / "run")
    with pytest.raises(DataError, match="48 tokens wide, but data.seq_len=64") as e:
        t.train()
    assert "\n" not in str(e.value)


def test_a_trainer_starting_afresh_into_an_existing_run_is_refused_in_one_line(
    runs, toy_world, toy_base, tmp_path
):
    cfg = load_config(None, settings(toy_world, toy_base))
    t = trainer(cfg, toy_base, tmp_path / "ckpt")
    attach(t, cfg, runs["hf"])
    before = (runs["hf"] / "logprobs.npy").read_bytes()
    with pytest.raises(DataError, match="exists and is not empty") as e:
        t.train()
    assert "\n" not in str(e.value)
    assert (runs["hf"] / "logprobs.npy").read_bytes() == before


def test_a_resume_from_a_checkpoint_made_without_factdyn_is_refused_in_one_line(
    toy_world, toy_base, tmp_path
):
    cfg = load_config(None, settings(toy_world, toy_base))
    plain = trainer(cfg, toy_base, tmp_path / "ckpt", save_strategy="steps", save_steps=2)
    plain.args.max_steps = 2
    plain.train()
    t = trainer(cfg, toy_base, tmp_path / "ckpt")
    attach(t, cfg, tmp_path / "run")
    with pytest.raises(DataError, match="without factdyn's state") as e:
        t.train(resume_from_checkpoint=True)
    assert "\n" not in str(e.value)


def test_labels_and_attention_mask_move_with_the_placed_text():
    from factdyn.integrations.core import carry

    placed = np.array([[7, 8, 9, 1, 2], [5, 5, 5, 5, 5]])
    labels = np.array([[1, 2, 3, -100, -100], [4, 4, 4, 4, 4]])
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    ones = np.ones_like(mask)
    # prepend: three tokens in front of row 0, whose own values move right (and off the end)
    assert carry(labels, placed, {0: 3}, "prepend", -100).tolist() == [
        [7, 8, 9, 1, 2],
        [4, 4, 4, 4, 4],
    ]
    assert carry(mask, ones, {0: 3}, "prepend", 1)[0].tolist() == [1, 1, 1, 1, 1]
    # replace: the text's tokens, then no loss (and attended, as factdyn's loop attends them)
    assert carry(labels, placed, {0: 3}, "replace", -100)[0].tolist() == [7, 8, 9, -100, -100]
    assert carry(mask, ones, {0: 3}, "replace", 1)[0].tolist() == [1, 1, 1, 1, 1]


def test_factdyn_train_does_not_resume_a_run_the_trainer_drove(runs):
    """The Trainer's run resumes in the Trainer (its checkpoints hold factdyn's state);
    factdyn train --resume says so in one line, instead of looking for checkpoints it never
    wrote."""
    assert load_run(runs["hf"]).meta["loop"] == "transformers.Trainer"
    assert load_run(runs["own"]).meta["loop"] == "factdyn"
    with pytest.raises(DataError, match=r"trained inside transformers\.Trainer, not by factdyn"):
        train(None, runs["hf"], resume=True)
