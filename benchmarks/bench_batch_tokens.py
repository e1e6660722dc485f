"""Probe scoring speed against the token budget of a forward pass (``eval.batch_tokens``).

Question: on a CPU, which budget scores the demo's probes fastest? Every logged step of the
demo scores all of its probes, so scoring is most of a demo run's time. A large budget means
few forward passes but logits of a size (rows × width × vocabulary) that no cache holds; a
small one, many passes with fixed overheads. Baseline: 16,384 tokens (the default before this
benchmark), measured in the same run.

The demo's model shape (``BaseConfig``'s defaults: hidden 128, 4 layers, vocabulary 2,048,
random weights) and 900 probe-like requests (the demo's 60 items × 15 probes; lengths as
bench_scoring.py draws them). Every budget is first checked to give the baseline's numbers;
then medians of interleaved repetitions after a warm-up.

    .venv/bin/python benchmarks/bench_batch_tokens.py [--reps 7] [--probes 900] [--threads 2]
"""

from __future__ import annotations

import time

import numpy as np

from bench_scoring import demo_shape, timed
from factdyn.score.loglik import length_batches, score_requests

BASELINE = 16384
BUDGETS = (1024, 2048, 4096, 8192, BASELINE)


def main() -> None:
    start = time.perf_counter()
    args, model, reqs = demo_shape(__doc__)
    print(f"{len(reqs)} probes, {reqs.lengths.sum()} tokens; {args.threads} threads")
    reference = score_requests(model, reqs, batch_tokens=BASELINE)
    for budget in BUDGETS:  # warm-up, and the same numbers at every budget
        np.testing.assert_allclose(
            score_requests(model, reqs, batch_tokens=budget), reference, atol=1e-4
        )
    t = timed(
        {b: (lambda b=b: score_requests(model, reqs, batch_tokens=b)) for b in BUDGETS},
        args.reps,
    )
    print(f"{'batch_tokens':>12} {'passes':>6} {'median s':>9} {'vs ' + str(BASELINE):>10}")
    for b in BUDGETS:
        passes = len(length_batches(reqs.lengths, b))
        print(f"{b:>12,} {passes:>6} {t[b]:>9.3f} {t[BASELINE] / t[b]:>9.2f}x")
    best = min(BUDGETS, key=t.__getitem__)
    print(f"fastest: {best:,} tokens, {t[BASELINE] / t[best]:.2f}x the baseline's speed")
    print(f"(benchmark took {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
