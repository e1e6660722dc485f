"""Probe scoring speed: factdyn's scorer vs the paper's way vs a bare forward pass.

(a) factdyn: ``score_requests`` (length-sorted token-budget batches, one forward per batch,
    every statistic gathered on the device);
(b) the paper's way: every batch padded to the longest probe of the whole set, three forward
    passes per batch (first token, target span, full text), a Python loop over rows computing
    cross-entropy slices;
(c) the floor: a bare forward pass (logits only) over exactly factdyn's padded batches.

A small random Llama (hidden 256, 4 layers, vocab 2048) on CPU with 2 threads, ~600 probes of
varied length made of random token ids. The factdyn result is checked against the baseline's
numbers first; then medians of interleaved repetitions after a warm-up. The ratios (targets:
baseline/factdyn >= 3, factdyn/bare <= 1.2) are printed last. On a machine shared with other
busy processes, two OpenMP threads get erratic; ``--threads 1`` gives steadier figures.

    .venv/bin/python benchmarks/bench_scoring.py [--reps 5] [--probes 600] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from factdyn.score.loglik import _pad, length_batches, score_requests
from factdyn.score.requests import Requests


def make_model(vocab: int = 2048):
    """The project's own tiny-Llama builder, at a size where the forward pass dominates."""
    from factdyn.config import BaseConfig
    from factdyn.train.base import build_model

    cfg = BaseConfig(hidden_size=256, layers=4, heads=4, intermediate_size=688, seq_len=256)
    return build_model(cfg, vocab, eos_id=0).eval()


def make_requests(n: int, vocab: int, seed: int = 0) -> Requests:
    """Probe-like requests: 6-40 tokens, skewed short (median ~14), targets of 1-5 tokens."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(14), 0.45, n).astype(int), 6, 40)
    ids, spans = [], []
    for L in lengths:
        t = int(rng.integers(1, 6))
        ids.append(rng.integers(1, vocab, int(L)).astype(np.int64))
        spans.append((int(L) - t, int(L)))
    return Requests(ids, np.asarray(spans, dtype=np.int64))


def demo_shape(doc: str) -> tuple[argparse.Namespace, torch.nn.Module, Requests]:
    """The demo's scoring shape, sized from the command line (``--reps``, ``--probes``,
    ``--threads``): the default tiny model (random weights) and probe-like requests."""
    from factdyn.config import BaseConfig
    from factdyn.train.base import build_model

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--probes", type=int, default=900)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    vocab = 2048
    model = build_model(BaseConfig(), vocab, eos_id=0).eval()
    return args, model, make_requests(args.probes, vocab)


def paper_way(model, reqs: Requests, batch_rows: int = 32, width: int | None = None) -> np.ndarray:
    """Three forward passes per batch, global padding, a Python loop per row."""
    n = len(reqs)
    width = width or int(reqs.lengths.max())
    out = np.empty((n, 4))
    with torch.inference_mode():
        for start in range(0, n, batch_rows):
            idx = np.arange(start, min(n, start + batch_rows))
            ids = torch.zeros((len(idx), width), dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, : len(reqs.ids[i])] = torch.from_numpy(reqs.ids[i])
                mask[r, : len(reqs.ids[i])] = 1
            device = next(model.parameters()).device  # the GPU check scores on a GPU
            ids, mask = ids.to(device), mask.to(device)
            for kind in ("first", "target", "full"):
                logits = model(input_ids=ids, attention_mask=mask).logits
                for r, i in enumerate(idx):
                    s, e = (int(x) for x in reqs.span[i])
                    lo, hi = {"first": (s, s + 1), "target": (s, e), "full": (1, len(reqs.ids[i]))}[
                        kind
                    ]
                    nll = F.cross_entropy(
                        logits[r, lo - 1 : hi - 1].float(), ids[r, lo:hi], reduction="none"
                    )
                    if kind == "first":
                        out[i, 2] = -nll[0].item()
                    elif kind == "target":
                        out[i, 0] = -nll.mean().item()
                        out[i, 1] = -nll.sum().item()
                    else:
                        out[i, 3] = -nll.mean().item()
    return out


def bare_forward(model, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.inference_mode():
        for ids, mask in batches:
            model(input_ids=ids, attention_mask=mask).logits  # noqa: B018


def timed(fns: dict, reps: int) -> dict[str, float]:
    """Median seconds per function; repetitions interleaved so that load from other processes
    on the machine falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--probes", type=int, default=600)
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    start = time.perf_counter()
    torch.set_num_threads(args.threads)

    vocab = 2048
    model = make_model(vocab)
    reqs = make_requests(args.probes, vocab)
    lengths = reqs.lengths
    batches = [_pad(reqs, idx, 0) for idx in length_batches(lengths, args.batch_tokens)]
    padded = sum(ids.numel() for ids, _ in batches)
    print(
        f"{len(reqs)} probes, {lengths.sum()} tokens (length {lengths.min()}-{lengths.max()}, "
        f"median {np.median(lengths):g}); factdyn: {len(batches)} batches, "
        f"{padded / lengths.sum():.3f}x padding; paper way: "
        f"{len(reqs) * lengths.max() / lengths.sum():.2f}x padding, 3 passes"
    )

    # warm-up, and a check that both scorers give the same numbers (or the timing is moot)
    bare_forward(model, batches)
    ours = score_requests(model, reqs, batch_tokens=args.batch_tokens)
    few = np.arange(0, len(reqs), 8)  # the baseline's warm-up: a subset, same padded width
    check = paper_way(model, reqs.subset(few), width=int(lengths.max()))
    np.testing.assert_allclose(ours[few], check, atol=1e-4)

    t = timed(
        {
            "bare": lambda: bare_forward(model, batches),
            "ours": lambda: score_requests(model, reqs, batch_tokens=args.batch_tokens),
            "paper": lambda: paper_way(model, reqs),
        },
        args.reps,
    )
    t_bare, t_ours, t_paper = t["bare"], t["ours"], t["paper"]
    print(f"bare forward  {t_bare:8.3f} s  (median of {args.reps})")
    print(f"factdyn       {t_ours:8.3f} s")
    print(f"paper's way   {t_paper:8.3f} s")
    print(f"(benchmark took {time.perf_counter() - start:.0f} s)")
    print(f"baseline/factdyn = {t_paper / t_ours:.2f}x (target >= 3)")
    print(f"factdyn/bare     = {t_ours / t_bare:.3f}x (target <= 1.2)")


if __name__ == "__main__":
    main()
