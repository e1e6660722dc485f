"""Benchmark: what TensorBoard tracking costs a training run (target: ≤ 2% of its step time).

The tiny world and base of bench_training.py (batch 4 × 128 tokens), three scenarios, three
controls, every step logged (the demo's schedule, so the tracker's per-logged-step means run
at every step). One run with ``train.trackers=[tensorboard]`` whose tracking is switched on and
off in alternating chunks of ``--chunk`` steps (off: the tracking callback's hooks return at
once; the event writer and its thread exist throughout). A step's time runs from one
``on_step_start`` to the next: its update, probe scoring, training log, checkpoint check and
tracking. Overhead = median over neighbouring (on, off) chunk pairs of (on ÷ off − 1), so the
machine's drift over the run cancels; the tracker's hooks' own time, as a share of the on
chunks' time, is printed beside it (blind to the writer's thread, which the pairs include).
The end-of-run analysis the tracker sends comes after the loop and is timed apart.

    python benchmarks/bench_tracking.py [--chunks 30] [--chunk 8]

The last line printed is the overhead of tracking, in per cent.
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")  # the 2-core target machine

import functools  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_training import BATCH, SEQ_LEN, THREADS, machine_info, tiny_sets, tiny_setup  # noqa: E402
from factdyn.train import tracking  # noqa: E402
from factdyn.train.callbacks import Callback  # noqa: E402


class StepClock(Callback):
    """Each step's wall time, from its ``on_step_start`` to the next one's."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_step_start(self, step: int, model) -> None:
        self.starts.append(time.perf_counter())


def gate_hooks(on: Callable[[int], bool], spent: dict[str, float]) -> None:
    """Make the tracking callback's step hooks run only for the steps where ``on(step)``, and
    add up the time they take in ``spent`` (``steps``; ``end``: the end-of-run analysis)."""
    for name in ("on_step_start", "on_step_end", "on_train_end"):
        hook = getattr(tracking.Tracking, name)

        @functools.wraps(hook)
        def gated(self, step, *args, _hook=hook, _name=name):
            if _name != "on_train_end" and not on(step):
                return
            t0 = time.perf_counter()
            _hook(self, step, *args)
            key = "end" if _name == "on_train_end" else "steps"
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - t0

        setattr(tracking.Tracking, name, gated)


def tracked_run(world: Path, base: Path, out: Path, steps: int) -> list[float]:
    """Step times of one tracked run."""
    from factdyn.config import load_config
    from factdyn.report.readout import AnalysisReadout
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
        "train.trackers=[tensorboard]",
    ]
    clock = StepClock()
    train(load_config(None, sets), out, callbacks=[clock], readouts=AnalysisReadout)
    return np.diff(clock.starts).tolist()  # steps 0 .. steps - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=30, help="chunks (half of them tracked)")
    parser.add_argument("--chunk", type=int, default=8, help="steps per chunk")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    print(machine_info())
    world, base = tiny_setup()
    warmup = args.chunk  # the first chunk is not counted
    steps = warmup + 2 * (args.chunks // 2) * args.chunk
    spent: dict[str, float] = {}
    gate_hooks(lambda step: step >= warmup and ((step - warmup) // args.chunk) % 2 == 0, spent)
    with tempfile.TemporaryDirectory(prefix="factdyn-bench-track-") as tmp:
        times = np.array(tracked_run(world, base, Path(tmp) / "run", steps))[warmup:]
    chunks = times.reshape(-1, 2, args.chunk).sum(axis=2)  # (pairs, on/off)
    on, off = chunks[:, 0], chunks[:, 1]
    ratios = on / off - 1
    print(
        f"setup: batch {BATCH} × {SEQ_LEN} tokens, every step logged, {steps} steps: one "
        f"warm-up chunk, then {len(on)} pairs of {args.chunk}-step chunks, tracked / not"
    )
    print(f"step time: tracked {1e3 * on.sum() / on.size / args.chunk:.1f} ms, "
          f"untracked {1e3 * off.sum() / off.size / args.chunk:.1f} ms (mean)")  # fmt: skip
    print("paired overhead per pair: " + ", ".join(f"{100 * v:+.1f}%" for v in ratios))
    print(
        f"tracker hooks' own time: {100 * spent['steps'] / on.sum():.2f}% of the tracked chunks; "
        f"the end-of-run analysis it sends: {spent['end']:.2f} s, after the loop"
    )
    overhead = 100 * float(np.median(ratios))
    print(f"target overhead ≤ 2%: {'met' if overhead <= 2 else 'MISSED'}")
    print(f"overhead of TensorBoard tracking (median of paired chunks): {overhead:+.1f}%")


if __name__ == "__main__":
    main()
