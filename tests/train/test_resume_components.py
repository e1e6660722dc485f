"""Resume through self-saving components: a checkpoint's state.json holds the state of the
data position, the record of the injections, the probe log, the training log and the
trackers, each restored by the checkpointer; a checkpoint written before they saved
themselves still resumes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd

from factdyn import load_run
from factdyn.config import load_config
from factdyn.rundir import PROVENANCE_FILE
from factdyn.train import checkpoint as ckpt
from factdyn.train.experiment import train

SETS = [
    "data.seq_len=64",
    "train.batch_size=8",
    "injection.interval=2",  # injections at 0, 2, ..., 8,
    "injection.n_controls=3",
    "injection.cohorts=1",
    "injection.scenario_offset=0",
    "eval.window=5",
    "eval.schedule=every",
    "train.checkpoint_every=8",
    "train.threads=2",
]


def _cfg(world, base, steps: int):
    sets = [f"data.path={world}", f"model.name={base}", *SETS, f"train.steps={steps}"]
    return load_config(None, sets)


def test_a_checkpoint_from_before_components_saved_themselves_resumes_to_the_same_log(
    toy_world, toy_base, tmp_path
):
    """A checkpoint whose state.json holds the step alone still resumes, here into a longer
    run, to the log of a run that never stopped; new checkpoints carry every component's
    state."""
    ref = load_run(train(_cfg(toy_world, toy_base, 24), tmp_path / "ref"))
    run_dir = train(_cfg(toy_world, toy_base, 16), tmp_path / "run")
    first = load_run(run_dir).meta["data_order"]["start"]  # the data position of step 0
    old = run_dir / "checkpoints" / "step_0000008"
    assert json.loads((old / "state.json").read_text())["data"]["position"] == first + 8 * 8
    (old / "state.json").write_text(json.dumps({"step": 8}))
    (old / "manifest.json").unlink()
    ckpt.write_manifest(old, step=8)
    shutil.rmtree(run_dir / "checkpoints" / "step_0000016")  # as if killed before it
    train(_cfg(toy_world, toy_base, 24), run_dir, resume=True)
    run = load_run(run_dir)
    assert run.steps.tolist() == ref.steps.tolist() == list(range(25))
    np.testing.assert_array_equal(run.logprobs, ref.logprobs)  # NaN alike: the unlogged `full`
    assert np.array_equal(run.train.to_numpy(), ref.train.to_numpy())
    state = json.loads((run_dir / "checkpoints" / "step_0000024" / "state.json").read_text())
    assert state["data"] == {"step": 24, "position": first + 24 * 8}
    assert state["probe_log"] == {"step": 24, "rows": 25}
    assert state["train_log"] == {"step": 24}
    # the record of the injections: those before step 8 kept, the later ones made again
    record = pd.read_parquet(run_dir / PROVENANCE_FILE)
    assert record.equals(pd.read_parquet(tmp_path / "ref" / PROVENANCE_FILE))
    assert state["provenance"] == {"records": len(record)} and len(record) == len(run.injections)
