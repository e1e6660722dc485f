"""Benchmark: the item bootstrap (1,000 resamples of every population) on a paper-scale log.

bench_analysis.py's synthetic log (120 items × 15 probes = 1,800 probes, 2,500 logged steps)
is analysed with ``resamples=0`` (point estimates only: the baseline, measured in the same
run) and with ``--resamples`` resamples. Reported: both times and their ratio, and the target
of issue 13, ≤ 30 s for 1,000 resamples on 2 cores.

    python benchmarks/bench_bootstrap.py [--resamples 1000] [--reps 3]

The last line printed is the bootstrap's time.
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")  # the 2-core target machine

import time  # noqa: E402

import numpy as np  # noqa: E402

from bench_analysis import synthetic_run  # noqa: E402
from factdyn.analyze.populations import analyze_run  # noqa: E402


def timed(run, resamples: int, reps: int) -> float:
    """Median wall time of ``reps`` analyses after a warm-up."""
    analyze_run(run, resamples=min(resamples, 10))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        analyze_run(run, resamples=resamples)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    run = synthetic_run()
    print(f"log: {run.logprobs.shape[1]:,} probes × {len(run.steps):,} logged steps")
    base = timed(run, 0, args.reps)
    boot = timed(run, args.resamples, args.reps)
    print(f"point estimates only: median {base:.2f} s of {args.reps}")
    print(
        f"with {args.resamples:,} resamples: median {boot:.2f} s ({boot / base:.0f}× the baseline)"
    )
    verdict = "met" if boot <= 30 else "MISSED"
    print(f"bootstrap of a paper-scale log: {boot:.1f} s (target ≤ 30 s: {verdict})")


if __name__ == "__main__":
    main()
