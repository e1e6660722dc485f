"""Score knowledge items with any causal LM: one row per probe (``factdyn score``).

Thin glue over :mod:`factdyn.score.requests` (encoding, offset-mapping spans) and
:mod:`factdyn.score.loglik` (length-batched, one forward pass per batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from factdyn.data.items import KnowledgeItem
from factdyn.rundir import STATS
from factdyn.score.loglik import score_requests
from factdyn.score.requests import encode_probes, probe_table


def score_items(
    model,
    tokenizer,
    items: Sequence[KnowledgeItem],
    batch_tokens: int = 16384,
    progress: bool = False,
    full: bool = True,
) -> pd.DataFrame:
    """One row per probe (canonical order): item, depth, probe, target_mean, target_sum,
    first, full (natural-log probabilities; NaN without ``full``), greedy (0/1)."""
    table = probe_table(items)
    reqs = encode_probes(tokenizer, items)
    stats = score_requests(model, reqs, batch_tokens=batch_tokens, progress=progress, full=full)
    out = table[["item", "depth", "probe"]].copy()
    out[list(STATS)] = stats
    return out
