"""Batched log-likelihood of requests: every statistic from one forward pass per batch.

Following lm-evaluation-harness: sort by length (longest first), fill batches up to a token
budget so padding stays small, run the model once, restore the original order. Only what a
statistic reads is computed: the last token of a text predicts nothing, so it is not fed; the
LM head runs on the last positions of the batch that hold a target (``logits_to_keep``, one
call of the model, FSDP-sharded or not); log-softmax and argmax run, in fp32, only on the
positions that predict a target token, or on every position when the whole-text statistic
``full`` is asked for (NaN otherwise). On the demo's tiny model a pass takes 0.82× the time of
computing every position; the transformer body, which every statistic needs, is nearly all of
the rest (docs/notebook/benchmarks.md, section 11).
"""

from __future__ import annotations

import inspect

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


def pad(reqs: Requests, idx: np.ndarray, pad_id: int) -> torch.Tensor:
    """(rows, longest) token ids, right-padded: one copy of the concatenated rows into place."""
    lengths = np.fromiter((len(reqs.ids[i]) for i in idx), dtype=np.int64, count=len(idx))
    ids = np.full((len(idx), int(lengths.max())), pad_id, dtype=np.int64)
    ids[np.arange(ids.shape[1]) < lengths[:, None]] = np.concatenate([reqs.ids[i] for i in idx])
    return torch.from_numpy(ids)


def batch_stats(
    logits: torch.Tensor, ids: torch.Tensor, span: torch.Tensor, lengths: torch.Tensor, full: bool
) -> torch.Tensor:
    """(B, 5) statistics of one batch (:data:`~factdyn.rundir.STATS`) from ``logits`` (B, K, V)
    at the last K of the W = L - 1 input positions of ``ids`` (B, L): position p predicts
    token p + 1. Log-softmax (in fp32) and argmax reduce only the positions that predict a
    target token (span [s, e) of ``ids``), or every predicting position with ``full``; the
    greedy flag is lm-evaluation-harness's ``is_greedy`` (ties go to the lowest token id)."""
    b, keep, vocab = logits.shape
    width = ids.size(1) - 1
    pos = torch.arange(width, device=ids.device)
    in_span = (pos >= span[:, :1] - 1) & (pos < span[:, 1:] - 1)  # (B, W)
    need = pos < (lengths.unsqueeze(1) - 1) if full else in_span
    row, p = need.nonzero(as_tuple=True)
    at = logits.reshape(b * keep, vocab).index_select(0, row * keep + p - (width - keep))
    at = at.float()
    tok = ids[row, p + 1]
    lp = (at.gather(1, tok.unsqueeze(1)).squeeze(1) - at.logsumexp(1)).double()
    tgt = in_span[row, p]
    t_row = row[tgt]
    t_sum = torch.zeros(b, dtype=torch.float64, device=ids.device).index_add_(0, t_row, lp[tgt])
    t_len = torch.bincount(t_row, minlength=b)
    is_first = p == span[row, 0] - 1  # one per row: position s - 1
    first = torch.zeros_like(t_sum).index_copy_(0, row[is_first], lp[is_first])
    miss = at[tgt].argmax(dim=1) != tok[tgt]
    greedy = torch.bincount(t_row[miss], minlength=b) == 0
    if full:
        whole = torch.zeros_like(t_sum).index_add_(0, row, lp) / (lengths - 1)
    else:
        whole = torch.full_like(t_sum, float("nan"))
    return torch.stack([t_sum / t_len, t_sum, first, whole, greedy.double()], dim=1)


def _forward_options(model, keep: int) -> dict:
    """What the model's forward takes of: the LM head on the last ``keep`` positions only
    (without ``logits_to_keep`` it runs on every position and the last ones are read), and
    no key/value cache (nothing is generated)."""
    wanted = {"logits_to_keep": keep, "use_cache": False}
    params = inspect.signature(model.forward).parameters
    return {k: v for k, v in wanted.items() if k in params}


def _no_grad_mode(model):
    """inference_mode, except where what the forward leaves behind is used by the training
    after it and must not become inference tensors: an FSDP-sharded model's all-gather
    buffers, or a model that says so with ``scored_under_no_grad = True`` (the OLMo-core
    adapter: its model's DDP or FSDP state)."""
    from torch.distributed.fsdp import FSDPModule

    if isinstance(model, FSDPModule) or getattr(model, "scored_under_no_grad", False):
        return torch.no_grad()
    return torch.inference_mode()


def score_requests(
    model,
    requests: Requests,
    *,
    batch_tokens: int = 16384,
    device=None,
    progress: bool = False,
    full: bool = False,
) -> np.ndarray:
    """(n, 5) float64 in request order: target_mean, target_sum, first, full (natural log;
    NaN unless ``full``), greedy (0/1); see :data:`factdyn.rundir.STATS`."""
    out = np.empty((len(requests), len(STATS)), dtype=np.float64)
    if len(requests) == 0:
        return out
    device = torch.device(device) if device is not None else next(model.parameters()).device
    lengths = requests.lengths
    was_training = model.training
    model.eval()
    try:
        from tqdm.auto import tqdm

        batches = length_batches(lengths, batch_tokens)
        with _no_grad_mode(model):
            for idx in tqdm(
                batches, desc="scoring", unit="batch", disable=not progress, leave=False
            ):
                ids = pad(requests, idx, pad_id=0).to(device)
                span, n = (torch.as_tensor(a[idx], device=device) for a in (requests.span, lengths))
                width = ids.size(1) - 1  # the last token predicts nothing: not fed
                keep = width if full else width + 1 - int(requests.span[idx, 0].min())
                mask = (torch.arange(width, device=device) < n.unsqueeze(1)).long()
                opts = _forward_options(model, keep)
                logits = model(input_ids=ids[:, :width], attention_mask=mask, **opts).logits
                stats = batch_stats(logits, ids, span, n, full)
                out[idx] = stats.cpu().numpy()  # sync point: once per batch
    finally:
        model.train(was_training)
    return out
