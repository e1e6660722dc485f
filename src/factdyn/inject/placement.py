"""Where injected text goes in a batch (docs/method.md#injection-scenarios).

``prepend``: the injected tokens and EOS go in front of one of the batch's original sequences,
truncated to the sequence length, so the rest of the row stays original data; with more items
than rows, several items share a row. ``replace``: the row holds only injected text, padded
with EOS that carries no loss. Placements depend only on the schedule, never on the data, so
the whole injection log is known (and length errors are raised) before training starts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from factdyn.errors import DataError
from factdyn.inject.schedule import Injection
from factdyn.rundir import INJECTIONS

IGNORE = -100  # label of positions that carry no loss (torch's cross_entropy default)


def _rows(n: int, batch_size: int) -> list[int]:
    """Rows used for n injections: spread evenly so they fall in different micro-batches."""
    k = min(n, batch_size)
    return [(j * batch_size) // k for j in range(k)]


def plan_placements(
    schedule: Sequence[Injection],
    tokens: dict[tuple[int, int], list[int]],
    batch_size: int,
    seq_len: int,
    allow_truncation: bool = False,
) -> pd.DataFrame:
    """The injection log: one row per injection with its batch row and token range.

    ``tokens[(item, variant)]`` are the text's ids *including* the trailing EOS.
    """
    by_step: dict[int, list[Injection]] = defaultdict(list)
    for inj in schedule:
        by_step[inj.step].append(inj)
    records = []
    for step in sorted(by_step):
        injs = by_step[step]
        rows = _rows(len(injs), batch_size)
        offset = dict.fromkeys(rows, 0)
        for j, inj in enumerate(injs):
            row = rows[j % len(rows)]
            n = len(tokens[(inj.item, inj.variant)])
            start = offset[row]
            if start + n > seq_len and not allow_truncation:
                what = f"is {n} tokens long" if start == 0 else f"would end at token {start + n}"
                raise DataError(
                    f"injection, item {inj.item}, variant {inj.variant}: text {what}, more than "
                    f"data.seq_len={seq_len} (set injection.allow_truncation=true to cut it)"
                )
            end = min(start + n, seq_len)
            offset[row] = start + n
            records.append((step, row, inj.item, inj.scenario, inj.variant, start, end))
    return pd.DataFrame.from_records(records, columns=list(INJECTIONS)).astype(INJECTIONS)


def apply_placements(
    batch: np.ndarray,
    placements: pd.DataFrame,
    tokens: dict[tuple[int, int], list[int]],
    mode: str,
    pad_id: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Input ids and labels of one step's batch ``(B, L)`` with its injections placed."""
    ids = batch.copy()
    labels = batch.copy()
    seq_len = batch.shape[1]
    for row, group in placements.groupby("row", sort=True):
        seg = np.concatenate([tokens[(int(r.item), int(r.variant))] for r in group.itertuples()])[
            :seq_len
        ]
        if mode == "prepend":
            ids[row] = np.concatenate([seg, batch[row]])[:seq_len]
            labels[row] = ids[row]
        else:
            ids[row, : len(seg)] = seg
            ids[row, len(seg) :] = pad_id
            labels[row] = ids[row]
            labels[row, len(seg) :] = IGNORE
    return ids, labels
