"""Where every injected text actually landed, with hashes of what was placed.

injections.parquet is the plan; provenance.parquet (schema ``rundir.PROVENANCE``) is the
record of the loop that ran it: the step, the process and micro-batch, the row, the span and
two SHA-256 hashes, of the item's text and of the token ids placed. ``factdyn verify`` checks
one against the other and against the items, so an edited item file or a loop that put a
text somewhere else is caught. Every training path (factdyn's loop, the integrations)
records through :func:`placed_records` and :class:`ProvenanceLog`, so the record means the
same thing whoever ran the run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from factdyn.data.items import KnowledgeItem
from factdyn.files import atomic_file
from factdyn.rundir import PROVENANCE, PROVENANCE_FILE, read_table


@dataclass(frozen=True)
class Placed:
    """One injected text where it actually landed."""

    step: int  # the update whose batch held it
    rank: int  # the process that placed it
    micro: int  # micro-batch index within the step on that rank (0-based)
    micro_row: int  # row within that micro-batch
    row: int  # the loop's global batch row (as injections.parquet's `row`)
    item: int
    variant: int  # 0 = train_context, i = paraphrases[i-1]
    placement: str  # "prepend" or "replace"
    token_start: int  # the text's span [start, end) in the row as placed
    token_end: int
    text_sha256: str  # sha256 hex of the item text as UTF-8
    tokens_sha256: str  # sha256 hex of ids[row, start:end] as little-endian int64 bytes


def text_sha256(text: str) -> str:
    """The hash provenance records of an item's text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tokens_sha256(ids: Sequence[int] | np.ndarray) -> str:
    """The hash provenance records of token ids: little-endian int64 bytes, whatever the
    dtype they were held in (so a torch int64 batch and a numpy one agree)."""
    return hashlib.sha256(np.asarray(ids, dtype="<i8").tobytes()).hexdigest()


def injected_tokens(tokenizer, text: str) -> list[int]:
    """The ids factdyn places for a text: its tokens, no special tokens, then EOS (how the
    plan tokenizes an injection, and so what ``factdyn verify`` hashes again)."""
    return [*tokenizer(text, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]


def item_texts(items: Sequence[KnowledgeItem]) -> dict[tuple[int, int], str]:
    """(item, variant) -> the text injected for it (variant 0 the paragraph, i paraphrase i-1)."""
    return {
        (k, v): it.variant(v) for k, it in enumerate(items) for v in range(len(it.paraphrases) + 1)
    }


def placed_records(
    step: int,
    rank: int,
    micro: int,
    placements: pd.DataFrame,
    rows: Sequence[int],
    ids: np.ndarray,
    mode: str,
    texts: Mapping[tuple[int, int], str],
) -> list[Placed]:
    """Records of the injections in ``placements`` (columns of rundir.INJECTIONS, ``row`` =
    global batch row) that fall in the micro-batch ``ids``, whose row i is global row
    ``rows[i]`` (consecutive in factdyn's loop and the Trainer, strided in OLMo-core), after
    they were placed into ``ids``."""
    ids = np.asarray(ids)
    local_of = {int(g): i for i, g in enumerate(rows)}
    mine = placements[placements.row.isin(list(local_of))]
    out = []
    for r in mine.itertuples():
        local = local_of[int(r.row)]
        start, end = int(r.token_start), int(r.token_end)
        out.append(
            Placed(
                step=step,
                rank=rank,
                micro=micro,
                micro_row=local,
                row=int(r.row),
                item=int(r.item),
                variant=int(r.variant),
                placement=mode,
                token_start=start,
                token_end=end,
                text_sha256=text_sha256(texts[(int(r.item), int(r.variant))]),
                tokens_sha256=tokens_sha256(ids[local, start:end]),
            )
        )
    return out


def provenance_table(records: Sequence[Placed]) -> pd.DataFrame:
    """The records as provenance.parquet's table, in the order given."""
    return pd.DataFrame([astuple(r) for r in records], columns=list(PROVENANCE)).astype(PROVENANCE)


class ProvenanceLog:
    """Writes RUN/provenance.parquet on the main rank (atomically, after each add). Stateful
    (state_dict/load_state_dict, like the other components of factdyn/train/checkpoint.py):
    its state is the number of records; restoring truncates to it, so a resumed run's record
    equals an uninterrupted one's."""

    def __init__(self, run_dir: Path, main: bool):
        self.path, self.main = Path(run_dir) / PROVENANCE_FILE, main
        self.table = provenance_table([])
        if main and not self.path.is_file():  # a run with no injection still says so
            self._write()

    def _write(self) -> None:
        with atomic_file(self.path) as tmp:
            self.table.to_parquet(tmp, index=False)

    def add(self, records: Sequence[Placed]) -> None:
        """On the main rank: every rank's records of one step (the caller gathers them),
        stored in row order (then span), whatever loop or layout of ranks placed them."""
        if not self.main or not records:
            return
        new = provenance_table(sorted(records, key=lambda r: (r.row, r.token_start)))
        self.table = pd.concat([self.table, new], ignore_index=True) if len(self.table) else new
        self._write()

    def state_dict(self) -> dict:
        return {"records": len(self.table)}

    def load_state_dict(self, state: dict) -> None:
        """The first ``records`` rows of the file; given only ``{"step": t}`` (a checkpoint
        from before provenance was recorded), the records of the steps before t."""
        if not self.main:
            return
        table = (
            read_table(self.path.parent, PROVENANCE_FILE, PROVENANCE)
            if self.path.is_file()
            else self.table
        )
        kept = table.step < int(state.get("step", 0))
        table = table.iloc[: int(state["records"])] if "records" in state else table[kept]
        self.table = table.astype(PROVENANCE).reset_index(drop=True)
        self._write()
