"""Paper-like planted runs for the report tests (the analysis tests' helper, configured)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analyze"))

from analyze_synth import planted_run, with_greedy, write_run_dir  # noqa: E402, F401

SCHEDULES = {
    "paraphrase": [0, 30, 60, 90],
    "duplicate": [0, 30, 60, 90],
    "once": [0],
}
# paper-like: paraphrase forgotten slower than duplicate
DECAY = {"paraphrase": (0.15, 0.9), "duplicate": (0.25, 0.9), "once": (0.2, 0.85)}
TOTAL = 300


def planted(batch_size: int = 16, tokens_per_step: int = 1000, seed: int = 0, **kw):
    """A paper-like planted run (three scenarios, controls); its batch size (sequences) in the
    config and, as training writes it, in meta.json with tokens_per_step."""
    kw.setdefault("schedules", SCHEDULES)
    kw.setdefault("decay", DECAY)
    config = {
        "model": {"name": "toy-base", "revision": None},
        "train": {"batch_size": batch_size, "steps": TOTAL},
        "eval": {"window": 10},
    }
    run = planted_run(
        items_per_scenario=4, probes_per_depth=4, total=TOTAL, seed=seed, config=config, **kw
    ).run
    run.meta.update(tokens_per_step=tokens_per_step, batch_size=batch_size)
    return run
