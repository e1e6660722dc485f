"""data.seed orders every background source; a saved dataset is read with data.source hf."""

from __future__ import annotations

import json

import numpy as np
import pytest
from char_tok import CharTok

from factdyn.config import DataConfig
from factdyn.data.sources import build_source
from factdyn.errors import DataError

# 40 documents of 3 distinct letters: each packs into exactly one sequence of 4 (text + EOS),
# so a sequence names its document
DOCS = [chr(65 + k % 26) + chr(97 + k // 26) + chr(48 + k % 10) for k in range(40)]


def _packed(docs: list[str]) -> list[list[int]]:
    return [[*map(ord, d), 0] for d in docs]


def _read(src, n: int) -> list[list[int]]:
    return [src.sequence(p).tolist() for p in range(n)]


@pytest.fixture
def jsonl_dir(tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    (d / "train.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in DOCS))
    return d


def test_hf_seed_shuffles_the_documents_reproducibly(jsonl_dir):
    def source(seed):
        return build_source(
            DataConfig(source="hf", path=str(jsonl_dir), seq_len=4, seed=seed), CharTok()
        )

    assert _read(source(0), 40) == _packed(DOCS)  # seed 0: the dataset's own order
    one, two = _read(source(1), 40), _read(source(2), 40)
    assert one != _packed(DOCS) and two != _packed(DOCS) and one != two
    assert sorted(one) == sorted(_packed(DOCS))  # every document once
    assert _read(source(1), 40) == one  # reproducible: a resume re-reads the same stream
    src = source(1)
    assert src.sequence(30).tolist() == one[30]  # forward, then back: restarts, same order
    assert src.sequence(3).tolist() == one[3]


def test_a_saved_dataset_is_read_with_source_hf(tmp_path):
    import datasets

    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"content": DOCS, "id": list(range(40))}).save_to_disk(saved)
    cfg = DataConfig(source="hf", path=str(saved), text_field="content", seq_len=4)
    assert _read(build_source(cfg, CharTok()), 40) == _packed(DOCS)
    shuffled = _read(build_source(cfg.model_copy(update={"seed": 5}), CharTok()), 40)
    assert shuffled != _packed(DOCS) and sorted(shuffled) == sorted(_packed(DOCS))
    # a DatasetDict: the split named by data.hf_split, or one line naming that field
    dd = tmp_path / "dd"
    datasets.DatasetDict(
        {"validation": datasets.Dataset.from_dict({"text": DOCS[:8]})}
    ).save_to_disk(dd)
    ok = DataConfig(source="hf", path=str(dd), hf_split="validation", seq_len=4)
    assert _read(build_source(ok, CharTok()), 8) == _packed(DOCS[:8])
    with pytest.raises(
        DataError, match=r"no split 'train' \(field 'data.hf_split'; it has validation\)"
    ):
        build_source(DataConfig(source="hf", path=str(dd), seq_len=4), CharTok()).sequence(0)
    with pytest.raises(
        DataError, match=r"no field 'text' \(set data.text_field to one of: content, id\)"
    ):
        build_source(DataConfig(source="hf", path=str(saved), seq_len=4), CharTok()).sequence(0)


def _olmo(tmp_path, seed: int, window: int | None = None, n: int = 50):
    from factdyn.data import olmo

    seq = 3
    np.arange(n * seq, dtype=np.uint16).tofile(tmp_path / "part-0.npy")
    order = np.random.default_rng(99).permutation(n).astype(np.uint32)  # OLMo's own order
    order.tofile(tmp_path / "global_indices.npy")
    cfg = DataConfig(
        source="olmo",
        files=[str(tmp_path / "part-0.npy")],
        path=str(tmp_path / "global_indices.npy"),
        seq_len=seq,
        seed=seed,
    )
    src = build_source(cfg, CharTok())
    if window is not None:
        assert isinstance(src, olmo.OlmoMemmap)
        src.window = window
    # instance id of each position: the first token of a sequence is 3 × its instance
    return order, [int(src.sequence(p)[0]) // seq for p in range(n)]


def test_olmo_seed_zero_is_olmos_order_another_shuffles_it_within_windows(tmp_path):
    order, read = _olmo(tmp_path, seed=0)
    assert read == order.tolist()
    _, one = _olmo(tmp_path, seed=1)
    _, two = _olmo(tmp_path, seed=2)
    assert one != read and two != read and one != two
    assert sorted(one) == sorted(read)
    assert _olmo(tmp_path, seed=1)[1] == one  # reproducible
    # windows of 8 positions: each window holds the same instances as OLMo's, reordered
    _, win = _olmo(tmp_path, seed=1, window=8)
    for w in range(0, 50, 8):
        assert sorted(win[w : w + 8]) == sorted(order[w : w + 8].tolist())
    assert win != order.tolist()


def test_a_dataset_shorter_than_the_run_is_read_again(jsonl_dir, tmp_path):
    import datasets

    plain = build_source(DataConfig(source="hf", path=str(jsonl_dir), seq_len=4), CharTok())
    assert _read(plain, 80) == _packed(DOCS) * 2  # seed 0: the same order on every pass
    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"text": DOCS}).save_to_disk(saved)
    for path in (jsonl_dir, saved):  # streamed, and saved
        src = build_source(DataConfig(source="hf", path=str(path), seq_len=4, seed=3), CharTok())
        first, second = _read(src, 80)[:40], _read(src, 80)[40:]
        assert sorted(first) == sorted(second) == sorted(_packed(DOCS))
        assert first != second  # each pass its own order
    empty = tmp_path / "empty"
    datasets.Dataset.from_dict({"text": ["x"]}).filter(lambda r: False).save_to_disk(empty)
    with pytest.raises(DataError, match="no documents in split 'train'"):
        build_source(DataConfig(source="hf", path=str(empty), seq_len=4), CharTok()).sequence(0)


def test_asking_a_stream_for_the_same_position_again_does_not_restart_it(jsonl_dir, monkeypatch):
    from factdyn.data import hfstream

    opened = []
    real = hfstream.open_documents
    monkeypatch.setattr(
        hfstream, "open_documents", lambda *a, **kw: opened.append(a) or real(*a, **kw)
    )
    src = build_source(DataConfig(source="hf", path=str(jsonl_dir), seq_len=4, seed=2), CharTok())
    first = src.sequence(0).tolist()  # train reads it before the model loads, then at step 0
    assert src.sequence(0).tolist() == first and src.sequence(1).tolist() != first
    assert len(opened) == 1
