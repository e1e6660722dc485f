"""Data sources: each position maps to the sequence a planted layout says it must."""

import json

import numpy as np
import pytest
from char_tok import CharTok

from factdyn.config import DataConfig
from factdyn.data.corpus import PackedTokens
from factdyn.data.sources import build_source
from factdyn.errors import DataError


def test_olmo_memmap_follows_global_index(tmp_path):
    seq = 4
    # shard 0 holds instances 0,1 (+ a partial tail that OLMo drops), shard 1 holds 2,3,4
    a = np.arange(0, 10, dtype=np.uint16)
    b = np.arange(100, 112, dtype=np.uint16)
    a.tofile(tmp_path / "part-0.npy")  # OLMo's raw memmap, no header
    np.save(tmp_path / "part-1.npy", b)  # a real .npy works too
    order = np.array([4, 0, 2, 1, 3], dtype=np.uint32)
    order.tofile(tmp_path / "global_indices.npy")
    cfg = DataConfig(
        source="olmo",
        files=[str(tmp_path / "part-0.npy"), str(tmp_path / "part-1.npy")],
        path=str(tmp_path / "global_indices.npy"),
        seq_len=seq,
    )
    src = build_source(cfg, CharTok())
    expect = {
        0: [0, 1, 2, 3],
        1: [4, 5, 6, 7],
        2: [100, 101, 102, 103],
        3: [104, 105, 106, 107],
        4: [108, 109, 110, 111],
    }
    assert [src.sequence(p).tolist() for p in range(5)] == [expect[i] for i in order]
    with pytest.raises(DataError, match="5 positions"):
        src.sequence(5)


def test_hf_dataset_streams_packs_in_order(tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    rows = [{"text": "abc"}, {"text": "defgh"}, {"text": "ij"}]
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = build_source(DataConfig(source="hf", path=str(d), seq_len=4), CharTok())
    stream = (
        [ord(c) for c in "abc"]
        + [0]
        + [ord(c) for c in "defgh"]
        + [0]
        + [ord(c) for c in "ij"]
        + [0]
    )
    assert src.sequence(1).tolist() == stream[4:8]
    assert src.sequence(0).tolist() == stream[0:4]  # going back restarts the stream
    assert src.sequence(2).tolist() == stream[8:12]


def test_local_text_is_packed_and_shuffled_per_epoch(tmp_path):
    (tmp_path / "a.txt").write_text("x" * 15)
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "y" * 7}) + "\n")
    src = build_source(DataConfig(source="text", path=str(tmp_path), seq_len=8, seed=3), CharTok())
    assert isinstance(src, PackedTokens) and src.n_sequences == 3  # 16 + 8 tokens
    epoch0 = sorted(src.sequence(p).tolist() for p in range(3))
    epoch1 = sorted(src.sequence(p).tolist() for p in range(3, 6))
    assert epoch0 == epoch1  # every sequence exactly once per epoch
    assert [src.sequence(p).tolist() for p in range(3)] == [
        src.sequence(p).tolist() for p in range(3)
    ]


def test_missing_corpus_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="no such corpus"):
        build_source(DataConfig(source="text", path=str(tmp_path / "nope")), CharTok())
