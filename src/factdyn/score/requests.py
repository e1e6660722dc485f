"""Probes as loglikelihood requests: token ids of ``input + " " + target`` and the target span.

The span is found from the tokenizer's offset mapping on the full text (docs/method.md),
never by tokenizing the target alone: a BPE merge across the boundary would silently shift it.
Encoding happens once per run; scoring then only moves token ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from factdyn.data.items import DEPTHS, KnowledgeItem
from factdyn.errors import DataError


@dataclass
class Requests:
    """Encoded requests. Token ``k`` of row ``i`` is predicted by the logits at ``k - 1``."""

    ids: list[np.ndarray]
    span: np.ndarray  # (n, 2) token range [start, end) of the scored continuation

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, idx: Sequence[int]) -> Requests:
        idx = np.asarray(idx, dtype=np.int64)
        return Requests([self.ids[i] for i in idx], self.span[idx])

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))


def probe_table(items: Sequence[KnowledgeItem]) -> pd.DataFrame:
    """Probes in canonical order (item, then depth in DEPTHS order, then probe index)."""
    rows = [
        (k, depth, j, p.input, p.target)
        for k, item in enumerate(items)
        for depth in DEPTHS
        for j, p in enumerate(item.probes.get(depth, ()))
    ]
    return pd.DataFrame(rows, columns=["item", "depth", "probe", "input", "target"])


def _probe_texts(table: pd.DataFrame) -> list[str]:
    """What is scored for each probe row: its input, a space, its target."""
    return [f"{i} {t}" for i, t in zip(table["input"], table["target"], strict=True)]


def _variant_field(variant: int) -> str:
    return "train_context" if variant == 0 else f"paraphrases[{variant - 1}]"


def check_lengths(
    items: Sequence[KnowledgeItem],
    tokenizer,
    seq_len: int,
    injected: Iterable[tuple[int, int]] = (),
) -> None:
    """Refuse up front what can never fit in ``seq_len`` tokens, naming item and field: a
    probe (input and target, scored as one sequence) and an injected text (``(item, variant)``
    pairs; :func:`~factdyn.inject.placement.plan_placements` then checks their exact length).
    Texts are first bounded by characters, so a megabyte string is refused without being
    tokenized (that, and scoring it, could take hours)."""
    longest = max(map(len, tokenizer.get_vocab()), default=1)
    # a token never covers more characters than its vocabulary entry (or an unknown word)
    max_chars = seq_len * max(longest, 128)
    where = f"more than data.seq_len={seq_len}"

    def bound(what: str, text: str) -> None:
        if len(text) > max_chars:
            raise DataError(f"{what}: {len(text):,} characters can never fit, {where}")

    def probe(r) -> str:
        return f"item {r.item}, field '{r.depth}' probe {r.probe}"

    table = probe_table(items)
    texts = _probe_texts(table)
    for r, text in zip(table.itertuples(), texts, strict=True):
        bound(probe(r), text)
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"] if texts else []
    for r, x in zip(table.itertuples(), ids, strict=True):
        if len(x) > seq_len:
            raise DataError(f"{probe(r)}: input and target are {len(x)} tokens, {where}")
    for item, variant in injected:
        bound(f"item {item}, field '{_variant_field(variant)}'", items[item].variant(variant))


def _encode(tokenizer, texts: list[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    enc = tokenizer(texts, return_offsets_mapping=True, add_special_tokens=True)
    return enc["input_ids"], enc["offset_mapping"]


def target_span(
    offsets: Sequence[tuple[int, int]], char_start: int, char_end: int
) -> tuple[int, int]:
    """Token range whose characters overlap ``[char_start, char_end)``; special tokens,
    which have empty offsets, never count."""
    hit = [k for k, (a, b) in enumerate(offsets) if b > a and a < char_end and b > char_start]
    return (hit[0], hit[-1] + 1) if hit else (0, 0)


def encode_probes(tokenizer, items: Sequence[KnowledgeItem]) -> Requests:
    """All probes of ``items`` in canonical order."""
    table = probe_table(items)
    texts = _probe_texts(table)
    ids, offsets = _encode(tokenizer, texts)
    spans = []
    for r, text, off in zip(table.itertuples(), texts, offsets, strict=True):
        s, e = target_span(off, len(r.input) + 1, len(text))
        if s < 1 or e <= s:
            raise DataError(
                f"item {r.item}, field '{r.depth}' probe {r.probe}: target span is empty or starts the "
                "text (nothing predicts it)"
            )
        spans.append((s, e))
    return Requests([np.asarray(x, dtype=np.int64) for x in ids], np.asarray(spans, dtype=np.int64))
