"""Batched log-likelihood of requests: every statistic from one forward pass per batch.

Following lm-evaluation-harness: sort by length (longest first), fill batches up to a token
budget so padding stays small, run the model once, gather the needed log probabilities in
fp32, restore the original order.
"""

from __future__ import annotations

import numpy as np
import torch

from factdyn.rundir import STATS
from factdyn.score.requests import Requests


def length_batches(lengths: np.ndarray, batch_tokens: int) -> list[np.ndarray]:
    """Indices grouped so that (rows × longest row) stays within ``batch_tokens``."""
    order = np.argsort(-lengths, kind="stable")
    batches, cur = [], []
    for i in order:
        width = lengths[cur[0]] if cur else lengths[i]  # longest first: first row sets the width
        if cur and (len(cur) + 1) * width > batch_tokens:
            batches.append(np.asarray(cur))
            cur = []
        cur.append(i)
    if cur:
        batches.append(np.asarray(cur))
    return batches


def _pad(reqs: Requests, idx: np.ndarray, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = int(max(len(reqs.ids[i]) for i in idx))
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for r, i in enumerate(idx):
        x = reqs.ids[i]
        ids[r, : len(x)] = torch.from_numpy(x)
        mask[r, : len(x)] = 1
    return ids, mask


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """log p(token k | tokens < k) for k ≥ 1, shape (B, L-1), in fp32.

    One fused log-softmax + gather (``cross_entropy``) over the whole contiguous logits, each
    position paired with the next token (the last position with a dummy, dropped): a shifted
    slice would be a strided view that log-softmax/logsumexp walk several times slower.
    """
    b, length, vocab = logits.shape
    nxt = torch.nn.functional.pad(ids[:, 1:], (0, 1))
    nll = torch.nn.functional.cross_entropy(
        logits.float().reshape(b * length, vocab), nxt.reshape(-1), reduction="none"
    )
    return nll.view(b, length)[:, :-1].neg()


def greedy_flags(logits: torch.Tensor, ids: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
    """(B,) bool: every target token (span [s, e) of ``ids``) is the argmax of the logits before
    it (lm-evaluation-harness's ``is_greedy``; ties go to the lowest token id, as ``argmax``
    breaks them). Only the target positions are reduced: an argmax over every position was
    about a tenth of a CPU scoring pass (benchmarks/bench_greedy.py)."""
    b, length, vocab = logits.shape
    pos = torch.arange(1, length, device=ids.device)
    in_span = (pos >= span[:, :1]) & (pos < span[:, 1:])  # (B, L-1): target token positions
    row, k = in_span.nonzero(as_tuple=True)  # token k + 1 of row, predicted at position k
    before = logits.reshape(b * length, vocab).index_select(0, row * length + k)
    miss = before.argmax(dim=-1) != ids[row, k + 1]
    return torch.bincount(row[miss], minlength=b) == 0


def batch_stats(
    lp: torch.Tensor, greedy: torch.Tensor, span: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """(B, 5) target_mean, target_sum, first, full from per-token log probs ``lp`` (B, L-1),
    and greedy (``greedy``, (B,) bool, as 1.0 / 0.0)."""
    lp = lp.double()
    pos = torch.arange(lp.size(1), device=lp.device)
    # token k is at lp[:, k-1]; span [s, e) covers lp positions [s-1, e-1)
    s, e = span[:, :1] - 1, span[:, 1:] - 1
    in_span = (pos >= s) & (pos < e)
    t_sum = (lp * in_span).sum(1)
    t_len = in_span.sum(1)
    first = lp.gather(1, s).squeeze(1)
    valid = pos < (lengths.unsqueeze(1) - 1)
    full = (lp * valid).sum(1) / valid.sum(1).clamp(min=1)
    return torch.stack([t_sum / t_len, t_sum, first, full, greedy.double()], dim=1)


def _no_grad_mode(model):
    """inference_mode, except for FSDP-sharded models, whose all-gather buffers are reused by
    later training steps and must not become inference tensors."""
    from torch.distributed.fsdp import FSDPModule

    return torch.no_grad() if isinstance(model, FSDPModule) else torch.inference_mode()


def score_requests(
    model, requests: Requests, *, batch_tokens: int = 16384, device=None, progress: bool = False
) -> np.ndarray:
    """(n, 5) float64 in request order: target_mean, target_sum, first, full (natural log),
    greedy (0/1); see :data:`factdyn.rundir.STATS`."""
    out = np.empty((len(requests), len(STATS)), dtype=np.float64)
    if len(requests) == 0:
        return out
    device = torch.device(device) if device is not None else next(model.parameters()).device
    lengths = requests.lengths
    batches = length_batches(lengths, batch_tokens)
    was_training = model.training
    model.eval()
    try:
        from tqdm.auto import tqdm

        with _no_grad_mode(model):
            for idx in tqdm(
                batches, desc="scoring", unit="batch", disable=not progress, leave=False
            ):
                ids, mask = _pad(requests, idx, pad_id=0)
                ids, mask = ids.to(device), mask.to(device)
                logits = model(input_ids=ids, attention_mask=mask).logits
                span = torch.as_tensor(requests.span[idx], device=device)
                stats = batch_stats(
                    token_logprobs(logits, ids),
                    greedy_flags(logits, ids, span),
                    span,
                    torch.as_tensor(lengths[idx], device=device),
                )
                out[idx] = (
                    stats.cpu().numpy()
                )  # sync point: results leave the device once per batch
    finally:
        model.train(was_training)
    return out
