"""The README's Trainer example runs as written (on the toy world and base in place of
factdyn's cached ones, which take minutes to build) and writes a run that analyze reads."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

from factdyn import load_run
from factdyn.analyze.populations import analyze_run
from factdyn.train import cached

# the same settings drive factdyn's loop, which uses what the trainer decides here
pytestmark = pytest.mark.filterwarnings("ignore:factdyn. the trainer decides")

EXAMPLE = Path(__file__).parents[2] / "examples" / "hf_trainer.py"


def test_the_trainer_example_runs_as_written(toy_world, toy_base, tmp_path, monkeypatch):
    monkeypatch.setattr(cached, "cached_world", lambda: toy_world)
    monkeypatch.setattr(cached, "cached_base", lambda world: toy_base)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    run = load_run(tmp_path / "runs" / "hf-example")
    assert run.meta["status"] == "done" and run.meta["steps_done"] == 50
    assert np.isfinite(run.logprobs[:, :, 0]).all()
    analysis = analyze_run(run, resamples=0)
    assert np.isfinite(analysis.get("duplicate", "memorization").effectivity)
