"""The record of where each injected text landed: its rows, spans and hashes, and its log."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch

from factdyn.data.items import KnowledgeItem
from factdyn.inject.placement import apply_placements, plan_placements
from factdyn.inject.provenance import (
    Placed,
    ProvenanceLog,
    item_texts,
    placed_records,
    tokens_sha256,
)
from factdyn.inject.schedule import Injection
from factdyn.runcheck import check_table
from factdyn.rundir import PROVENANCE, PROVENANCE_FILE
from factdyn.train.distributed import World, gather_objects

EOS = 0
TEXTS = {(i, 0): f"text {i}" for i in range(5)}
TOKENS = {(i, 0): [10 + i, 20 + i, EOS] for i in range(5)}


def _placed(mode: str, batch_size: int = 4, seq_len: int = 10):
    sched = [Injection(3, i, "s", 0) for i in range(5)]
    pl = plan_placements(sched, TOKENS, batch_size, seq_len)
    batch = np.arange(100, 100 + batch_size * seq_len).reshape(batch_size, seq_len)
    ids, _ = apply_placements(batch, pl, TOKENS, mode, EOS)
    return pl, ids


@pytest.mark.parametrize("mode", ["prepend", "replace"])
def test_each_injection_is_recorded_once_in_its_micro_batch_with_the_placed_tokens(mode):
    pl, ids = _placed(mode)
    m = 3  # micro-batches of 3 rows: rows 0-2, then row 3
    records = [
        r
        for k, first in enumerate(range(0, 4, m))
        for r in placed_records(
            3, 1, k, pl, range(first, min(first + m, 4)), ids[first : first + m], mode, TEXTS
        )
    ]
    assert sorted((r.row, r.item) for r in records) == sorted(zip(pl.row, pl.item, strict=True))
    for r in records:
        assert (r.step, r.rank, r.placement) == (3, 1, mode)
        assert (r.micro, r.micro_row) == divmod(r.row, m)
        assert r.text_sha256 == hashlib.sha256(f"text {r.item}".encode()).hexdigest()
        want = np.asarray(TOKENS[(r.item, 0)], dtype="<i8").tobytes()
        assert r.tokens_sha256 == hashlib.sha256(want).hexdigest()
        assert ids[r.row, r.token_start : r.token_end].tolist() == TOKENS[(r.item, 0)]


def test_the_tokens_hash_is_of_what_was_placed_not_what_was_planned():
    pl, ids = _placed("prepend")
    ids[0, 0] = 999  # a loop that placed something else
    (bad, *_), good = placed_records(3, 0, 0, pl, [0], ids[:1], "prepend", TEXTS), TOKENS[(0, 0)]
    assert bad.tokens_sha256 != tokens_sha256(good)
    assert tokens_sha256(torch.tensor(good)) == tokens_sha256(np.array(good, dtype=np.int32))


def test_rows_outside_the_micro_batch_are_not_recorded():
    pl, ids = _placed("prepend")
    assert placed_records(3, 0, 0, pl, range(4, 8), ids, "prepend", TEXTS) == []


def test_item_texts_are_the_paragraph_and_each_paraphrase():
    it = KnowledgeItem("p", {}, ("a", "b"))
    assert item_texts([it, KnowledgeItem("q", {})]) == {
        (0, 0): "p",
        (0, 1): "a",
        (0, 2): "b",
        (1, 0): "q",
    }


def _rec(step: int, item: int) -> Placed:
    return Placed(step, 0, 0, item, item, item, 0, "prepend", 0, 3, "a" * 64, "b" * 64)


def test_log_writes_the_schema_and_a_restore_truncates_to_the_saved_count(tmp_path):
    log = ProvenanceLog(tmp_path, main=True)
    read = lambda: pd.read_parquet(tmp_path / PROVENANCE_FILE)  # noqa: E731
    assert read().empty and list(read().columns) == list(PROVENANCE)
    check_table(read(), PROVENANCE, tmp_path / PROVENANCE_FILE)
    log.add([_rec(0, 1), _rec(0, 0)])  # as ranks gathered them: stored in row order
    assert read().row.tolist() == [0, 1]
    saved = log.state_dict()
    log.add([_rec(5, 2)])
    assert read().step.tolist() == [0, 0, 5]
    again = ProvenanceLog(tmp_path, main=True)  # a resumed process
    again.load_state_dict(saved)
    assert read().item.tolist() == [0, 1]
    again.add([_rec(5, 2)])
    assert read().to_dict("records")[2] == {**_rec(5, 2).__dict__}


def test_a_checkpoint_without_the_logs_state_keeps_the_steps_before_it(tmp_path):
    log = ProvenanceLog(tmp_path, main=True)
    log.add([_rec(0, 0), _rec(4, 1), _rec(9, 2)])
    ProvenanceLog(tmp_path, main=True).load_state_dict({"step": 5})
    assert pd.read_parquet(tmp_path / PROVENANCE_FILE).step.tolist() == [0, 4]


def test_other_ranks_write_nothing(tmp_path):
    log = ProvenanceLog(tmp_path, main=False)
    log.add([_rec(0, 0)])
    log.load_state_dict({"records": 0})
    assert not (tmp_path / PROVENANCE_FILE).exists()


def test_gather_objects_in_a_world_of_one_needs_no_process_group():
    assert gather_objects([1, 2], World(0, 1, torch.device("cpu"))) == [[1, 2]]
