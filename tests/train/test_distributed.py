"""Two CPU processes (torchrun, gloo) log what one process logs for the same global batch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from factdyn import load_run
from factdyn.rundir import PROVENANCE_FILE


def _run(args: list[str], out, nproc: int) -> None:
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--standalone",
    ]
    cmd = (launcher if nproc > 1 else [sys.executable]) + [
        "-m",
        "factdyn",
        "train",
        "--out",
        str(out),
        *args,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.parametrize(("mode", "schedule"), [("ddp", "sparse"), ("fsdp", "every")])
def test_two_processes_match_one(toy_world, toy_base, tmp_path, mode, schedule):
    sets = [
        f"data.path={toy_world}",
        f"model.name={toy_base}",
        "data.seq_len=64",
        "train.batch_size=8",
        "train.micro_batch_size=2",
        "injection.interval=10",
        "injection.n_controls=3",
        "eval.window=5",
        f"eval.schedule={schedule}",
        "eval.log_points=4",
        "train.steps=45",
        "train.threads=1",
        "train.checkpoint_every=20",
        f"model.fsdp={mode == 'fsdp'}",
    ]
    args = [f"--set={s}" for s in sets]
    _run(args, tmp_path / "one", 1)
    _run([*args, "--tracker", "tensorboard"], tmp_path / "two", 2)  # tracking measures nothing
    a, b = load_run(tmp_path / "one"), load_run(tmp_path / "two")
    assert a.steps.tolist() == b.steps.tolist()
    assert (a.steps.tolist() == list(range(46))) == (schedule == "every")
    # sparse: the ranks split only the items scheduled at each step; the gaps stay NaN
    assert np.array_equal(np.isnan(a.logprobs), np.isnan(b.logprobs))
    assert np.isnan(a.logprobs[:, :, 0]).any() == (schedule == "sparse")
    assert b.meta["world_size"] == 2 and b.meta["status"] == "done"
    np.testing.assert_allclose(b.logprobs, a.logprobs, atol=1e-4, rtol=0)
    np.testing.assert_allclose(b.train.loss, a.train.loss, atol=1e-5, rtol=0)
    assert a.injections.equals(b.injections)
    # the same record of the injections, placed by the rank holding their rows: rank q holds
    # rows 4q..4q+3 of the 8, in micro-batches of 2
    one, two = (pd.read_parquet(tmp_path / r / PROVENANCE_FILE) for r in ("one", "two"))
    where = ["rank", "micro", "micro_row"]
    assert len(one) == len(a.injections) and one.drop(columns=where).equals(two.drop(columns=where))
    assert (one["rank"] == 0).all() and (one.micro == one.row // 2).all()
    assert (two["rank"] == two.row // 4).all() and (two.micro == two.row % 4 // 2).all()
    assert (one.micro_row == one.row % 2).all() and (two.micro_row == two.row % 2).all()
    # written once: one set of checkpoints, complete
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == [
        "step_0000040",
        "step_0000045",
    ]
    # and tracked once, by rank 0: one event file, every update logged once
    (events,) = (tmp_path / "two" / "tb").glob("events.out.tfevents.*")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(45))


@pytest.mark.parametrize("arch", ["llama", "olmo", "gpt_neox"])
def test_fsdp_shards_every_decoder_layer_of_each_family(arch):
    from transformers import AutoConfig, AutoModelForCausalLM

    from factdyn.train.distributed import decoder_layers

    sizes = {"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2}
    sizes |= {"intermediate_size": 64, "vocab_size": 64}
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(arch, **sizes))
    layers = decoder_layers(model)
    assert len(layers) == 3  # not 0: the root alone would hold every parameter unsharded
    blocks = {n for n, m in model.named_modules() if any(m is layer for layer in layers)}
    assert len(blocks) == 3 and all(n.split(".")[-2] == "layers" for n in blocks)
