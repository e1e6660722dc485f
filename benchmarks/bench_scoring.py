"""Probe scoring speed on the demo's shape: factdyn's scorer against the one before it.

(a) factdyn: ``score_requests`` (length-sorted token-budget batches, one forward per batch;
    the last token not fed, the LM head and log-softmax only at the positions that predict a
    target token), without and with the whole-text statistic ``full`` (``eval.full_text``);
(b) the baseline, today's scorer before that change (2026-12-07), kept here verbatim: the LM
    head, a fused log-softmax and the statistics over every position of every text;
(c) the floor: the transformer body alone (no LM head) over the baseline's padded batches;
(d) with ``--paper``, the paper's way: every batch padded to the longest probe, three forward
    passes per batch, a Python loop over rows.

The demo's tiny model (``BaseConfig``, random weights: the time does not depend on them) and
the demo world's 900 probes with its tokenizer (the cached world, generated on first use, a few
seconds), ``eval.batch_tokens`` 1,024, one thread (each of the demo's side-by-side runs has
one). The numbers are checked first (max |diff| <= 1e-5 on every statistic); then medians of
interleaved repetitions of this process's CPU time (``--wall`` for wall-clock), steadier than
wall-clock on a machine other work shares. The key figure, factdyn/baseline, comes last.

    .venv/bin/python benchmarks/bench_scoring.py [--reps 9] [--threads 1] [--paper] [--quick]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from factdyn.score.loglik import length_batches, score_requests
from factdyn.score.requests import Requests


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


def _pad(reqs: Requests, idx: np.ndarray, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline's padding (also bench_greedy's): (ids, attention mask), a row at a time."""
    width = int(max(len(reqs.ids[i]) for i in idx))
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for r, i in enumerate(idx):
        x = reqs.ids[i]
        ids[r, : len(x)] = torch.from_numpy(x)
        mask[r, : len(x)] = 1
    return ids, mask


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The baseline's log p(token k | tokens < k), k >= 1, over every position (B, L-1)."""
    b, length, vocab = logits.shape
    nxt = F.pad(ids[:, 1:], (0, 1))
    nll = F.cross_entropy(
        logits.float().reshape(b * length, vocab), nxt.reshape(-1), reduction="none"
    )
    return nll.view(b, length)[:, :-1].neg()


def greedy_flags(logits: torch.Tensor, ids: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
    """The baseline's greedy flag (also bench_greedy's): argmax at the target positions."""
    b, length, vocab = logits.shape
    pos = torch.arange(1, length, device=ids.device)
    in_span = (pos >= span[:, :1]) & (pos < span[:, 1:])
    row, k = in_span.nonzero(as_tuple=True)
    before = logits.reshape(b * length, vocab).index_select(0, row * length + k)
    miss = before.argmax(dim=-1) != ids[row, k + 1]
    return torch.bincount(row[miss], minlength=b) == 0


def before_stats(lp, greedy, span, lengths) -> torch.Tensor:
    """The baseline's (B, 5) statistics from the per-token log probs of every position."""
    lp = lp.double()
    pos = torch.arange(lp.size(1), device=lp.device)
    s, e = span[:, :1] - 1, span[:, 1:] - 1
    in_span = (pos >= s) & (pos < e)
    t_sum = (lp * in_span).sum(1)
    t_len = in_span.sum(1)
    first = lp.gather(1, s).squeeze(1)
    valid = pos < (lengths.unsqueeze(1) - 1)
    full = (lp * valid).sum(1) / valid.sum(1).clamp(min=1)
    return torch.stack([t_sum / t_len, t_sum, first, full, greedy.double()], dim=1)


def score_before(model, reqs: Requests, batch_tokens: int) -> np.ndarray:
    """The baseline scorer: one forward per batch, the LM head over every position."""
    out = np.empty((len(reqs), 5))
    lengths = reqs.lengths
    with torch.inference_mode():
        for idx in length_batches(lengths, batch_tokens):
            ids, mask = _pad(reqs, idx, pad_id=0)
            logits = model(input_ids=ids, attention_mask=mask).logits
            span = torch.as_tensor(reqs.span[idx])
            flags = greedy_flags(logits, ids, span)
            lp = token_logprobs(logits, ids)
            out[idx] = before_stats(lp, flags, span, torch.as_tensor(lengths[idx])).numpy()
    return out


def bare_body(model, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """The transformer body alone (no LM head), over the baseline's padded batches."""
    with torch.inference_mode():
        for ids, mask in batches:
            model.base_model(input_ids=ids, attention_mask=mask)


def timed(fns: dict, reps: int, clock=time.perf_counter) -> dict[str, float]:
    """Median seconds per function; repetitions interleaved so that load from other processes
    on the machine falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def demo_probes() -> tuple[Requests, int]:
    """The demo world's probes, encoded with its tokenizer, and the vocabulary size."""
    from transformers import AutoTokenizer

    from factdyn.data.items import load_items
    from factdyn.score.requests import encode_probes
    from factdyn.train.cached import cached_world

    world = cached_world()
    tok = AutoTokenizer.from_pretrained(world / "tokenizer")
    return encode_probes(tok, load_items(world / "knowledge.json")), len(tok)


def check(model, reqs: Requests, batch_tokens: int) -> float:
    """Max |diff| of factdyn's statistics (``full`` from the ``full`` path) against the
    baseline's; refused above 1e-5, where the timing would be moot."""
    want = score_before(model, reqs, batch_tokens)
    fast = score_requests(model, reqs, batch_tokens=batch_tokens)
    whole = score_requests(model, reqs, batch_tokens=batch_tokens, full=True)
    assert np.isnan(fast[:, 3]).all()
    fast[:, 3] = whole[:, 3]
    diff = max(float(np.abs(fast - want).max()), float(np.abs(whole - want).max()))
    assert diff <= 1e-5, diff
    return diff


def main() -> None:
    from factdyn.config import BaseConfig
    from factdyn.train.base import build_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--batch-tokens", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--paper", action="store_true", help="also time the paper's three passes")
    ap.add_argument("--wall", action="store_true", help="wall-clock instead of CPU time")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 repetitions")
    args = ap.parse_args()
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, {args.threads} thread(s), torch "
          f"{torch.__version__}")  # fmt: skip
    reqs, vocab = demo_probes()
    model = build_model(BaseConfig(), vocab, eos_id=0).eval()
    bt, lengths = args.batch_tokens, reqs.lengths
    batches = [_pad(reqs, idx, 0) for idx in length_batches(lengths, bt)]
    print(
        f"{len(reqs)} probes, {lengths.sum()} tokens (length {lengths.min()}-{lengths.max()}, "
        f"median {np.median(lengths):g}), {len(batches)} batches of <= {bt} tokens"
    )
    diff = check(model, reqs, bt)  # also the warm-up
    print(f"max |diff| factdyn vs baseline, every statistic: {diff:.2e}")
    fns = {
        "baseline (today's scorer)": lambda: score_before(model, reqs, bt),
        "factdyn": lambda: score_requests(model, reqs, batch_tokens=bt),
        "factdyn, full_text": lambda: score_requests(model, reqs, batch_tokens=bt, full=True),
        "body alone (floor)": lambda: bare_body(model, batches),
    }
    if args.paper:
        fns["paper's way"] = lambda: paper_way(model, reqs)
    reps = 2 if args.quick else args.reps
    t = timed(fns, reps, time.perf_counter if args.wall else time.process_time)
    base = t["baseline (today's scorer)"]
    for name, sec in t.items():
        print(f"{name:28s} {sec:7.3f} s  {sec / base:5.3f}x baseline  (median of {reps})")
    print(f"(benchmark took {time.perf_counter() - start:.0f} s)")
    print(f"factdyn/baseline = {t['factdyn'] / base:.3f}x (target <= 0.6)")


if __name__ == "__main__":
    main()
