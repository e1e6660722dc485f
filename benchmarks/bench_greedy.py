"""The greedy flag's cost: an argmax over every position against one over the target tokens.

Question: how much of a CPU scoring pass did the greedy flag (the fifth probe statistic,
docs/method.md#the-probe-statistics) cost when it took the argmax of the logits at every
position, and how much does reducing only the target positions
(``greedy_flags``, now kept in bench_scoring.py as the old scorer's) save? Baseline: the every-position argmax (the code
before this benchmark, written out here), measured in the same run on the same logits, after
checking that both give the same flags.

The demo's shape: ``BaseConfig``'s model (random weights), 900 probe-like requests
(bench_scoring.py's lengths), ``eval.batch_tokens`` 4,096.

    .venv/bin/python benchmarks/bench_greedy.py [--reps 7] [--probes 900] [--threads 2]
"""

from __future__ import annotations

import time

import torch

from bench_scoring import _pad, demo_shape, greedy_flags, timed
from factdyn.score.loglik import length_batches, score_requests


def every_position(logits: torch.Tensor, ids: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
    """The baseline: argmax at every position, then the target span picked out."""
    hit = logits.argmax(dim=-1)[:, :-1] == ids[:, 1:]
    pos = torch.arange(hit.size(1))
    in_span = (pos >= span[:, :1] - 1) & (pos < span[:, 1:] - 1)
    return (hit | ~in_span).all(1)


def main() -> None:
    start = time.perf_counter()
    args, model, reqs = demo_shape(__doc__)
    batches = []
    with torch.inference_mode():
        for idx in length_batches(reqs.lengths, 4096):
            ids, mask = _pad(reqs, idx, pad_id=0)
            logits = model(input_ids=ids, attention_mask=mask).logits
            batches.append((logits, ids, torch.as_tensor(reqs.span[idx])))
            assert torch.equal(every_position(*batches[-1]), greedy_flags(*batches[-1]))
    print(f"{len(reqs)} probes in {len(batches)} passes; {args.threads} threads")

    def over_batches(fn):
        return lambda: [fn(*b) for b in batches]

    t = timed(
        {
            "every position": over_batches(every_position),
            "target positions": over_batches(greedy_flags),
            "scoring pass": lambda: score_requests(model, reqs, batch_tokens=4096),
        },
        args.reps,
    )
    base, new, whole = t["every position"], t["target positions"], t["scoring pass"]
    print(f"{'greedy flag':>18} {'median s':>9} {'share of a pass':>16} {'vs baseline':>12}")
    for name in ("every position", "target positions"):
        print(f"{name:>18} {t[name]:>9.4f} {t[name] / whole:>15.1%} {base / t[name]:>11.1f}x")
    print(
        f"scoring pass (target positions) {whole:.3f} s; without the change it would take "
        f"about {(whole - new + base) / whole:.2f}x as long"
    )
    print(f"[{time.perf_counter() - start:.0f} s]")


if __name__ == "__main__":
    main()
