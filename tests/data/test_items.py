"""Knowledge data in the paper's format (docs/method.md#knowledge-items-and-probes): round
trips, dataset directories and the hub path, one-line validation errors, and `factdyn data validate`."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from factdyn.data.items import KnowledgeItem, Probe, load_items, save_items
from factdyn.errors import DataError

PAPER_FIELDS = {
    "train_context",
    "mem_input",
    "mem_target",
    "gen_input",
    "gen_target",
    "hard_gen_input",
    "hard_gen_target",
    "paraphrases",
}


def _record(k: int, n_para: int = 2) -> dict:
    rec = {
        "train_context": f"The Orrin Vale Conservatory {k} was founded in 21{k:02d} on Tessaly.",
        "mem_input": [f"The Orrin Vale Conservatory {k} was founded in 21{k:02d} on", "It is a"],
        "mem_target": ["Tessaly", "music school"],
        "gen_input": [f"Founded in 21{k:02d}, conservatory {k} lies on the airborne city of"],
        "gen_target": ["Tessaly"],
        "hard_gen_input": ["Graduates of the school sing", "Its anthem is", "Its founder was"],
        "hard_gen_target": ["'Salt and Brass'", "sung yearly", "Imre Dask"],
    }
    if n_para:
        rec["paraphrases"] = [f"Paraphrase {j} of item {k}." for j in range(n_para)]
    return rec


def _records() -> list[dict]:
    return [_record(0), _record(1, n_para=0), _record(2, n_para=5)]


def _check_items(items: list[KnowledgeItem], records: list[dict]) -> None:
    """Items against the raw records, field by field."""
    assert len(items) == len(records)
    pairs = {
        "memorization": ("mem_input", "mem_target"),
        "semantic": ("gen_input", "gen_target"),
        "composition": ("hard_gen_input", "hard_gen_target"),
    }
    for item, rec in zip(items, records, strict=True):
        assert item.train_context == rec["train_context"]
        assert item.paraphrases == tuple(rec.get("paraphrases", ()))
        for depth, (fin, ftg) in pairs.items():
            want = tuple(Probe(i, t) for i, t in zip(rec[fin], rec[ftg], strict=True))
            assert item.probes[depth] == want


def _write_json(path, records) -> None:
    path.write_text(json.dumps(records, indent=2), encoding="utf-8")


def _write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


# ---- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("src_ext", ["json", "jsonl"])
@pytest.mark.parametrize("dst_ext", ["json", "jsonl"])
def test_round_trip_same_field_names(tmp_path, src_ext, dst_ext):
    records = _records()
    src = tmp_path / f"in.{src_ext}"
    (_write_json if src_ext == "json" else _write_jsonl)(src, records)
    items = load_items(src)
    _check_items(items, records)

    dst = tmp_path / f"out.{dst_ext}"
    save_items(items, dst)
    text = dst.read_text(encoding="utf-8")
    if dst_ext == "json":
        written = json.loads(text)
    else:
        written = [json.loads(line) for line in text.splitlines()]
        assert len(text.splitlines()) == len(records)
    assert written == records  # same field names, same values; absent paraphrases stay absent
    for rec in written:
        assert set(rec) <= PAPER_FIELDS
    _check_items(load_items(dst), records)


def test_unknown_fields_survive_round_trip(tmp_path):
    records = _records()
    records[0]["entity_kind"] = "school"
    _write_json(tmp_path / "a.json", records)
    save_items(load_items(tmp_path / "a.json"), tmp_path / "b.json")
    assert json.loads((tmp_path / "b.json").read_text())[0]["entity_kind"] == "school"


def test_non_ascii_round_trip(tmp_path):
    records = _records()
    records[0]["mem_target"][0] = "Tessalý – 東京"
    _write_json(tmp_path / "a.json", records)
    save_items(load_items(tmp_path / "a.json"), tmp_path / "b.jsonl")
    assert load_items(tmp_path / "b.jsonl")[0].probes["memorization"][0].target == "Tessalý – 東京"


# ---- dataset directories and the hub path -------------------------------------------------


def test_dataset_dir_with_json_file(tmp_path):
    records = _records()
    (tmp_path / "ds").mkdir()
    _write_json(tmp_path / "ds" / "fictional_knowledge.json", records)
    _check_items(load_items(tmp_path / "ds"), records)


def test_dataset_dir_with_jsonl_file(tmp_path):
    records = _records()
    (tmp_path / "ds").mkdir()
    _write_jsonl(tmp_path / "ds" / "train.jsonl", records)
    _check_items(load_items(tmp_path / "ds"), records)


def test_dataset_saved_to_disk(tmp_path):
    import datasets

    records = _records()
    datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "disk"))
    _check_items(load_items(tmp_path / "disk"), records)  # item 1's missing paraphrases: ()


def test_hub_id_goes_through_datasets(tmp_path, monkeypatch):
    """A hub id is handed to datasets.load_dataset (redirected here to a local directory)."""
    import datasets

    records = _records()
    local = tmp_path / "hub-copy"
    local.mkdir()
    _write_json(local / "data.json", records)
    real = datasets.load_dataset
    asked = []

    def fake_load_dataset(name, *args, **kwargs):
        asked.append((name, kwargs.get("split")))
        return real(str(local), *args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    items = load_items("kaist-ai/fictional-knowledge")
    assert asked == [("kaist-ai/fictional-knowledge", "train")]
    _check_items(items, records)


def test_hub_failure_is_one_line(monkeypatch):
    import datasets

    def boom(*args, **kwargs):
        raise ConnectionError("no network\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", boom)
    with pytest.raises(DataError) as e:
        load_items("someone/missing-dataset")
    assert "someone/missing-dataset" in str(e.value) and "\n" not in str(e.value)


def test_missing_json_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_items(tmp_path / "nope" / "items.json")


# ---- validation errors --------------------------------------------------------------------


def _error(tmp_path, records, name="items.json") -> str:
    path = tmp_path / name
    (_write_json if name.endswith(".json") else _write_jsonl)(path, records)
    with pytest.raises(DataError) as e:
        load_items(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert str(path) in msg
    return msg


@pytest.mark.parametrize("name", ["items.json", "items.jsonl"])
def test_missing_field(tmp_path, name):
    records = _records()
    del records[1]["gen_target"]
    msg = _error(tmp_path, records, name)
    assert "item 1" in msg and "'gen_target'" in msg and "missing" in msg


def test_missing_train_context(tmp_path):
    records = _records()
    del records[2]["train_context"]
    msg = _error(tmp_path, records)
    assert "item 2" in msg and "'train_context'" in msg and "missing" in msg


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mem_input", "a string, not a list"),
        ("hard_gen_target", ["ok", 7, "ok"]),
        ("train_context", 12),
        ("paraphrases", {"a": 1}),
    ],
)
def test_mistyped_field(tmp_path, field, value):
    records = _records()
    records[2][field] = value
    msg = _error(tmp_path, records)
    assert "item 2" in msg and f"'{field}'" in msg and "expected" in msg


def test_input_target_length_mismatch(tmp_path):
    records = _records()
    records[1]["hard_gen_target"] = records[1]["hard_gen_target"][:2]
    msg = _error(tmp_path, records)
    assert "item 1" in msg and "hard_gen" in msg and "2 targets for 3 inputs" in msg


@pytest.mark.parametrize(("field", "value"), [("gen_input", ""), ("mem_target", "  ")])
def test_empty_input_or_target(tmp_path, field, value):
    records = _records()
    records[0][field][0] = value
    msg = _error(tmp_path, records)
    assert "item 0" in msg and f"'{field}'" in msg and "empty" in msg


def test_duplicate_items(tmp_path):
    records = _records()
    records.append(dict(records[1]))
    msg = _error(tmp_path, records)
    assert "item 3" in msg and "duplicate of item 1" in msg and "'train_context'" in msg


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.json"
    text = json.dumps([{**_record(0), "train_context": "Caf\u00e9 Tessaly"}], ensure_ascii=False)
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(DataError) as e:
        load_items(path)
    msg = str(e.value)
    assert str(path) in msg and "UTF-8" in msg and "\n" not in msg


def test_json_syntax_error_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    lines = json.dumps(_records(), indent=2).splitlines()
    # break line 5: drop the comma at its end (the next line starts a new key)
    assert lines[4].endswith(",")
    lines[4] = lines[4][:-1]
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_items(path)
    msg = str(e.value)
    # the parser notices at the first non-blank character of line 6
    col = len(lines[5]) - len(lines[5].lstrip()) + 1
    assert str(path) in msg and f"line 6 column {col}" in msg and "\n" not in msg


def test_jsonl_syntax_error_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = [json.dumps(r) for r in _records()]
    path.write_text(good[0] + "\n" + good[1] + "\n" + '{"train_context": oops}\n', encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_items(path)
    assert f"{path}: JSON syntax error at line 3 column 19" in str(e.value)


def test_top_level_not_a_list(tmp_path):
    path = tmp_path / "obj.json"
    path.write_text(json.dumps(_record(0)), encoding="utf-8")
    with pytest.raises(DataError, match="expected a JSON list"):
        load_items(path)


# ---- factdyn data validate ----------------------------------------------------------------


def _run_main(monkeypatch, capsys, args) -> tuple[int, str, str]:
    from factdyn.cli import main

    monkeypatch.setattr(sys, "argv", ["factdyn", *args])
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_validate_bad_data_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    records = _records()
    records[2]["mem_target"] = records[2]["mem_target"][:1]
    path = tmp_path / "bad.json"
    _write_json(path, records)
    code, out, err = _run_main(monkeypatch, capsys, ["data", "validate", str(path)])
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("factdyn: error:") and str(path) in lines[0] and "item 2" in lines[0]


def test_validate_non_utf8_exits_2(tmp_path, monkeypatch, capsys):
    path = tmp_path / "bad.json"
    path.write_bytes(b"[\xff]")
    code, _, err = _run_main(monkeypatch, capsys, ["data", "validate", str(path)])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "UTF-8" in err


def test_validate_good_data_counts(tmp_path):
    from typer.testing import CliRunner

    from factdyn.cli import app

    records = _records()
    path = tmp_path / "good.jsonl"
    _write_jsonl(path, records)
    result = CliRunner().invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "items: 3\n" in out
    n_mem = sum(len(r["mem_input"]) for r in records)
    n_gen = sum(len(r["gen_input"]) for r in records)
    n_hard = sum(len(r["hard_gen_input"]) for r in records)
    assert (n_mem, n_gen, n_hard) == (6, 3, 9)
    assert f"memorization {n_mem}, semantic {n_gen}, composition {n_hard} (total 18)" in out
    # paraphrases per item: 2, 0, 5
    assert "paraphrases per item: min 0, median 2, max 5" in out
    assert "tokens" not in out


def test_validate_token_lengths(toy_world):
    from tokenizers import Tokenizer
    from typer.testing import CliRunner

    from factdyn.cli import app

    path = toy_world / "knowledge.json"
    records = json.loads(path.read_text())
    tok = Tokenizer.from_file(str(toy_world / "tokenizer" / "tokenizer.json"))

    def stats(texts):
        n = np.array([len(tok.encode(t).ids) for t in texts])
        return f"min {n.min()}, median {np.median(n):g}, max {n.max()}"

    result = CliRunner().invoke(
        app, ["data", "validate", str(path), "--tokenizer", str(toy_world / "tokenizer")]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"items: {len(records)}\n" in out
    contexts = [r["train_context"] for r in records]
    paraphrases = [p for r in records for p in r["paraphrases"]]
    probes = [
        f"{i} {t}"
        for r in records
        for fin, ftg in [
            ("mem_input", "mem_target"),
            ("gen_input", "gen_target"),
            ("hard_gen_input", "hard_gen_target"),
        ]
        for i, t in zip(r[fin], r[ftg], strict=True)
    ]
    assert f"tokens train_context: {stats(contexts)}" in out
    assert f"tokens paraphrases: {stats(paraphrases)}" in out
    assert f"tokens probes: {stats(probes)}" in out
