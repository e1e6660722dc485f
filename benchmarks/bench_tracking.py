"""Benchmark: what TensorBoard tracking costs a training run (target: ≤ 2% of its step time).

The tiny world and base of bench_training.py (batch 4 × 128 tokens), three scenarios, three
controls, every step logged (the demo's schedule, so the tracker's per-logged-step means run
at every step). Two measurements, both in this run:

1. **Paired runs.** ``--pairs`` pairs of short runs (``--steps`` each), one without trackers
   and one with ``train.trackers=[tensorboard]``, in alternating order; a run's loop time is
   from the first ``on_step_start`` to the last (every step's update, probe scoring, training
   log and tracking; not the setup, and not the end-of-run analysis the tracker sends, which
   is timed apart). Overhead = median over pairs of (tracked ÷ untracked − 1).
2. **The tracker's own time.** In the tracked runs, the time spent inside the tracking
   callback's hooks, as a share of the loop time: the same overhead without the noise of a
   busy machine between runs (but blind to the writer's background thread).

    python benchmarks/bench_tracking.py [--pairs 5] [--steps 40]

The last line printed is the overhead of tracking (paired runs), in per cent.
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")  # the 2-core target machine

import functools  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_training import BATCH, SEQ_LEN, THREADS, machine_info, tiny_sets, tiny_setup  # noqa: E402
from factdyn.train import tracking  # noqa: E402
from factdyn.train.callbacks import Callback  # noqa: E402


class LoopClock(Callback):
    """Wall time from the first step's start to θ_T (the loop, not its setup or end)."""

    def __init__(self) -> None:
        self.first = self.last = 0.0

    def on_step_start(self, step: int, model) -> None:
        now = time.perf_counter()
        self.first = self.first or now
        self.last = now


def time_hooks(spent: dict[str, float]) -> None:
    """Wrap the tracking callback's hooks so that their time adds up in ``spent``."""
    for name in ("on_train_start", "on_step_start", "on_step_end", "on_train_end"):
        hook = getattr(tracking.Tracking, name)

        @functools.wraps(hook)
        def timed(self, *args, _hook=hook, _name=name):
            t0 = time.perf_counter()
            _hook(self, *args)
            key = "end" if _name == "on_train_end" else "steps"
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - t0

        setattr(tracking.Tracking, name, timed)


def one_run(world: Path, base: Path, out: Path, steps: int, tracked: bool) -> float:
    from factdyn.config import load_config
    from factdyn.train.experiment import train

    sets = [
        *tiny_sets(world, base, steps),
        f"injection.interval={max(1, steps // 4)}",
        "injection.cohorts=1",
        "injection.scenario_offset=0",
        "injection.scenarios=[{name: paraphrase, variant: paraphrase, count: 3},"
        " {name: duplicate, variant: duplicate, count: 3}, {name: once, count: 1}]",
        "injection.allow_truncation=true",
        "injection.n_controls=3",
        "eval.schedule=every",
        "eval.window=2",
        "eval.contexts=false",
        f"train.trackers={'[tensorboard]' if tracked else '[]'}",
    ]
    clock = LoopClock()
    train(load_config(None, sets), out, callbacks=[clock])
    return clock.last - clock.first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    print(machine_info())
    world, base = tiny_setup()
    spent: dict[str, float] = {}
    time_hooks(spent)
    plain, tracked, shares, ends = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="factdyn-bench-track-") as tmp:
        one_run(world, base, Path(tmp) / "warmup", args.steps, True)  # caches, imports
        for k in range(args.pairs):
            times = {}
            for on in (False, True) if k % 2 == 0 else (True, False):
                spent.clear()
                times[on] = one_run(world, base, Path(tmp) / f"{k}-{on}", args.steps, on)
                if on:
                    shares.append(spent["steps"] / times[on])
                    ends.append(spent["end"])
            plain.append(times[False])
            tracked.append(times[True])
    ratios = np.array(tracked) / np.array(plain) - 1
    step_ms = 1e3 * float(np.median(plain)) / args.steps
    print(
        f"setup: batch {BATCH} × {SEQ_LEN} tokens, every step logged, {args.pairs} pairs of "
        f"{args.steps}-step runs in alternating order; untracked step {step_ms:.1f} ms (median)"
    )
    print("loop time untracked, s: " + ", ".join(f"{v:.2f}" for v in plain))
    print("loop time tracked,   s: " + ", ".join(f"{v:.2f}" for v in tracked))
    print("paired overhead: " + ", ".join(f"{100 * v:+.1f}%" for v in ratios))
    print(
        f"tracker hooks' own time: {100 * float(np.median(shares)):.2f}% of the loop (median); "
        f"the end-of-run analysis it sends: {float(np.median(ends)):.2f} s, after the loop"
    )
    overhead = 100 * float(np.median(ratios))
    print(f"target overhead ≤ 2%: {'met' if overhead <= 2 else 'MISSED'}")
    print(f"overhead of TensorBoard tracking (paired runs, median): {overhead:+.1f}%")


if __name__ == "__main__":
    main()
