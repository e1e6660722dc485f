"""factdyn inside OLMo-core's Trainer: the scorer's view of an OLMo-core model; the batches the
model trains on; one method, two loops, one answer; resume from an OLMo-core checkpoint; bad
input in one line before anything is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from loops import assert_resumed_like_whole, assert_same_run
from olmo_core.train.callbacks import Callback
from olmo_run import (
    BATCH,
    MICRO,
    SEQ,
    STEPS,
    data_loader,
    main,
    model_config,
    prepare,
    settings,
    trainer,
)

from factdyn import load_items, load_run
from factdyn.analyze.populations import analyze_run
from factdyn.config import load_config
from factdyn.errors import DataError
from factdyn.inject.placement import IGNORE
from factdyn.integrations.olmo_core import FactdynCallback, OlmoCoreLM
from factdyn.rundir import PROVENANCE_FILE
from factdyn.score.loglik import score_requests
from factdyn.score.requests import Requests
from factdyn.train.experiment import train
from factdyn.train.verify import verify_run

# OLMo-core saves and loads one process's checkpoints through torch.distributed.checkpoint,
# which warns that no process group is set up: that is the single-process case meant here
pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.distributed is disabled"),
    # the same settings drive factdyn's loop, which uses what the trainer decides here
    pytest.mark.filterwarnings("ignore:factdyn. the trainer decides"),
]

HERE = Path(__file__).parent
PLACED = ["step", "row", "item", "variant", "token_start", "token_end", "tokens_sha256"]


def test_the_scorer_reads_an_olmo_core_model_as_a_direct_computation_does():
    torch.manual_seed(0)
    model = model_config(50).build(init_device="cpu")
    model.init_weights(device=torch.device("cpu"))
    rng = np.random.default_rng(0)
    ids = [rng.integers(0, 50, n) for n in (9, 5, 12)]
    spans = np.array([[4, 9], [2, 5], [7, 10]])
    got = score_requests(OlmoCoreLM(model), Requests(ids, spans), full=True)
    assert model.training  # the scorer gives the model back in the mode it found it
    for k, (row, (s, e)) in enumerate(zip(ids, spans, strict=True)):
        with torch.no_grad():
            logits = model(torch.as_tensor(row[None, :-1]))[0].double()
        lp = logits.log_softmax(-1).gather(1, torch.as_tensor(row[1:, None])).squeeze(1)
        target = lp[s - 1 : e - 1].numpy()
        assert got[k, 0] == pytest.approx(target.mean(), abs=1e-5)  # target_mean
        assert got[k, 1] == pytest.approx(target.sum(), abs=1e-5)  # target_sum
        assert got[k, 2] == pytest.approx(target[0], abs=1e-5)  # first
        assert got[k, 3] == pytest.approx(lp.mean().item(), abs=1e-5)  # full
        greedy = logits[s - 1 : e - 1].argmax(-1).numpy() == row[s:e]
        assert got[k, 4] == float(greedy.all())


class Seen(Callback):
    """Keeps what the model's forward received in training: the micro-batches' input ids and
    labels, in order."""

    def __init__(self):
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    def pre_train(self):
        def hook(module, args, kwargs):
            if module.training and self.step > 0:  # not the trainer's dry run
                self.calls.append((args[0].numpy().copy(), kwargs["labels"].numpy().copy()))

        self.trainer.train_module.model.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.fixture(scope="module")
def runs(toy_world, tmp_path_factory) -> dict:
    """The same run by factdyn's own loop and by OLMo-core's Trainer with the callback (replace
    mode: the loss counts fewer tokens where the injections pad)."""
    root = tmp_path_factory.mktemp("olmo")
    data = prepare(toy_world, root)
    cfg = load_config(None, settings(toy_world, data, "injection.placement=replace"))
    own = train(cfg, root / "own")
    seen = Seen()
    t = trainer(cfg, data, root / "oc", callbacks={"seen": seen})
    t.add_callback("factdyn", FactdynCallback(cfg, root / "run", data["hf"]))
    t.fit()
    return {
        "own": own,
        "run": root / "run",
        "data": data,
        "seen": seen.calls,
        "cfg": cfg,
        "root": root,
    }


def test_olmo_core_and_factdyns_loop_log_the_same(runs):
    own, oc = load_run(runs["own"]), load_run(runs["run"])
    assert_same_run(own, oc, STEPS)
    assert oc.meta["loop"] == "olmo_core.train.Trainer"  # it alone resumes the run
    mine = pd.read_parquet(runs["own"] / PROVENANCE_FILE)
    placed = pd.read_parquet(runs["run"] / PROVENANCE_FILE)
    assert mine[PLACED].equals(placed[PLACED]) and (placed.placement == "replace").all()
    a, b = analyze_run(own, resamples=0), analyze_run(oc, resamples=0)
    for pop in a.populations:
        other = b.get(pop.scenario, pop.depth)
        np.testing.assert_allclose(other.effectivity, pop.effectivity, atol=1e-4)
    pd.testing.assert_frame_equal(a.trajectories, b.trajectories, atol=1e-4, check_exact=False)


def test_the_model_trains_on_the_items_tokens_where_the_schedule_says(runs, toy_world):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(runs["data"]["hf"])
    items = load_items(toy_world / "knowledge.json")
    calls = runs["seen"]
    assert len(calls) == STEPS * BATCH // MICRO  # the train module's micro-batches
    ids = np.concatenate([c[0] for c in calls]).reshape(STEPS, BATCH, SEQ)
    labels = np.concatenate([c[1] for c in calls]).reshape(STEPS, BATCH, SEQ)
    run = load_run(runs["run"])
    assert len(run.injections) and set(run.injections.step) <= set(range(STEPS))
    for r in run.injections.itertuples():
        text = items[r.item].variant(r.variant)
        expect = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        row, lab = ids[r.step, r.row], labels[r.step, r.row]
        assert row[r.token_start : r.token_end].tolist() == expect, (r.step, r.row)
        end = r.token_end  # replace: the text, then padding the loss ignores
        assert lab[: end - 1].tolist() == row[1:end].tolist()
        assert (lab[end - 1 :] == IGNORE).all()
    untouched = np.ones((STEPS, BATCH), dtype=bool)
    untouched[run.injections.step, run.injections.row] = False
    shifted = labels[..., :-1] == ids[..., 1:]
    assert shifted[untouched].all() and (labels[untouched][:, -1] == IGNORE).all()


def test_the_run_is_analyzed_and_its_record_verified(runs):
    result = analyze_run(load_run(runs["run"]), resamples=0)
    assert len(result.populations)
    found = verify_run(runs["run"], tokenizer=runs["data"]["hf"])
    assert not found.differences and found.injections == len(load_run(runs["run"]).injections)


class Kill(KeyboardInterrupt):
    pass


class KillAt(Callback):
    """Ends the run after update 6: after the checkpoint of step 4, before that of step 8."""

    def post_train_batch(self):
        if self.step == 6:
            raise Kill


def test_a_resume_from_an_olmo_core_checkpoint_continues_the_log_exactly(runs, toy_world, tmp_path):
    cfg, data = runs["cfg"], runs["data"]
    first = trainer(cfg, data, tmp_path, save_interval=4, callbacks={"kill": KillAt()})
    cb = FactdynCallback(cfg, tmp_path / "run", data["hf"])
    first.add_callback("factdyn", cb)
    with pytest.raises(Kill):
        first.fit()
    assert load_run(tmp_path / "run").meta["steps_done"] == 4
    assert load_run(tmp_path / "run").meta["status"] == "running"
    again = trainer(cfg, data, tmp_path, save_interval=4)
    again.add_callback("factdyn", FactdynCallback(cfg, tmp_path / "run", data["hf"]))
    again.fit()  # finds the checkpoint of step 4 in its save folder
    assert_resumed_like_whole(runs["run"], tmp_path / "run", atol=1e-6)


def test_a_data_loader_of_other_sequence_lengths_is_refused_before_anything_is_written(
    runs, toy_world, tmp_path
):
    cfg = load_config(None, settings(toy_world, runs["data"], "data.seq_len=32"))
    t = trainer(runs["cfg"], runs["data"], tmp_path)  # its loader reads 64-token sequences
    t.add_callback("factdyn", FactdynCallback(cfg, tmp_path / "run", runs["data"]["hf"]))
    with pytest.raises(DataError, match="reads sequences of 64 tokens: set data.seq_len=64") as e:
        t.fit()
    assert "\n" not in str(e.value) and not (tmp_path / "run").exists()


def test_intra_document_masking_is_refused_before_anything_is_written(runs, tmp_path):
    t = trainer(runs["cfg"], runs["data"], tmp_path)
    tok = runs["data"]["hf"]
    t.data_loader = data_loader(
        runs["data"]["tokens"], tmp_path / "w", 0, 400, generate_doc_lengths=True
    )
    t.add_callback("factdyn", FactdynCallback(runs["cfg"], tmp_path / "run", tok))
    with pytest.raises(DataError, match="doc_lens in the batch") as e:
        t.fit()
    assert "\n" not in str(e.value) and not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def one_process(runs, toy_world) -> Path:
    """The run of the torchrun tests' settings in one process."""
    main(str(toy_world), str(runs["root"]), str(runs["root"] / "one"), "2")
    return runs["root"] / "one" / "run"


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_torchrun_processes_log_what_one_does(runs, one_process, toy_world, tmp_path, parallel):
    """Data parallel over gloo, prepend mode, two sequences per micro-batch and process:
    OLMo-core deals a step's sequences to the ranks in turn, and row r is the r-th in its data
    order; under FSDP every rank joins every scoring pass."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    cmd += [str(HERE / "olmo_run.py"), str(toy_world), str(runs["root"]), str(tmp_path), "2"]
    cmd += [parallel]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = load_run(one_process), load_run(tmp_path / "run")
    assert b.meta["world_size"] == 2 and b.meta["status"] == "done"
    assert b.meta["config"]["model"]["fsdp"] == (parallel == "fsdp")
    np.testing.assert_allclose(b.logprobs, a.logprobs, atol=1e-4, rtol=0)
    np.testing.assert_allclose(b.train.loss, a.train.loss, atol=1e-5, rtol=0)
    pa = pd.read_parquet(one_process / PROVENANCE_FILE)
    pb = pd.read_parquet(tmp_path / "run" / PROVENANCE_FILE)
    assert pa[PLACED].equals(pb[PLACED])
    assert set(pb["rank"]) == {0, 1} and (pb.row % 2 == pb["rank"]).all()
    assert (pb.micro == pb.row // 2 // 2).all() and (pb.micro_row == pb.row // 2 % 2).all()
