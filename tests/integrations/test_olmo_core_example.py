"""The README's OLMo-core example runs as written (on the toy world in place of factdyn's cached
one, which takes minutes to build) and writes a run that analyze reads and verify passes."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

from factdyn import load_run
from factdyn.analyze.populations import analyze_run
from factdyn.train import cached
from factdyn.train.verify import verify_run

# OLMo-core saves and loads one process's checkpoints through torch.distributed.checkpoint,
# which warns that no process group is set up: that is the single-process case meant here
pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.distributed is disabled"),
    # the same settings drive factdyn's loop, which uses what the trainer decides here
    pytest.mark.filterwarnings("ignore:factdyn. the trainer decides"),
]

EXAMPLE = Path(__file__).parents[2] / "examples" / "olmo_core_trainer.py"


def test_the_olmo_core_example_runs_as_written(toy_world, tmp_path, monkeypatch):
    monkeypatch.setattr(cached, "cached_world", lambda: toy_world)
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only contend on a busy machine
    try:
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    finally:
        torch.set_num_threads(threads)
    run = load_run(tmp_path / "runs" / "olmo-example")
    assert run.meta["status"] == "done" and run.meta["steps_done"] == 50
    assert np.isfinite(run.logprobs[:, :, 0]).all()
    analysis = analyze_run(run, resamples=0)
    assert np.isfinite(analysis.get("duplicate", "memorization").effectivity)
    found = verify_run(run.path, tokenizer=toy_world / "tokenizer")
    assert not found.differences
