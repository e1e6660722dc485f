"""Property-based fuzzing of the readers a user feeds by hand (issue 12, item 6).

The promise under test: whatever bytes a knowledge file, a config or a published reference log
holds, reading it either succeeds with a result that is whole (items survive a save and a
reload unchanged) or ends in one :class:`DataError` whose message is one line naming the file.
Any other exception — RecursionError, UnicodeDecodeError, KeyError, TypeError — is a traceback
for the user, so it fails here. Inputs start valid and are damaged twice: in structure (fields
dropped, mistyped, nulled, nested deep, stringified) and as bytes (truncated, non-UTF-8, a BOM,
NaN literals, duplicate keys, huge numbers, 100k-deep arrays).

Every property runs a fixed number of examples with a derandomized seed, so CI is repeatable.
Each crash the fuzzing found is also kept as a fixed regression case.
"""

from __future__ import annotations

import copy
import json
import re
import string
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from factdyn.analyze.reference import PREFIXES, read_reference_log
from factdyn.config import RunConfig, dump_config, load_config
from factdyn.data.items import DEPTH_FIELDS, KnowledgeItem, load_items, save_items
from factdyn.errors import DataError
from factdyn.rundir import STATS

# Fixed examples per property: enough to reach every mutation many times (50 at least), few
# enough that the file takes about 15 s of CPU (a valid reference log costs ~20 ms: pandas; a
# hostile YAML, nested to the recursion limit, up to ~0.2 s). Each crash found is a fixed case.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The crash cases read 100k-deep nesting and 5000-digit numbers: each once took a long recursion
# or a hang; now each reads in about a second at most (16 s on a machine loaded sixfold). A limit
# that fails a hang, generous enough that a busy machine does not fail a case (tests/conftest.py).
HANG = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder per module: each example overwrites its file (no fixture per example)."""
    return tmp_path_factory.mktemp("fuzz")


# ---- the property ------------------------------------------------------------------------


def assert_one_line(err: DataError, *names: str) -> None:
    """The message is one line (no line break of any kind) and names one of ``names``."""
    msg = str(err)
    assert len(msg.splitlines()) == 1, f"message is not one line: {msg!r}"
    assert any(n in msg for n in names), f"message names none of {names}: {msg!r}"


def read_or_refuse(read: Callable[[], object], *names: str) -> object | None:
    """``read()``'s result, or None after a one-line DataError naming one of ``names``; any
    other exception propagates and fails the test."""
    try:
        out = read()
    except DataError as e:
        assert_one_line(e, *names)
        _event("refused")
        return None
    _event("read")
    return out


def _event(name: str) -> None:
    """Count outcomes for ``--hypothesis-show-statistics`` (only inside a Hypothesis test:
    the regression cases below call the same property directly)."""
    if currently_in_test_context():
        event(name)


# ---- damage: structure -------------------------------------------------------------------

TEXT = st.text(max_size=12)  # hypothesis' default alphabet: any code point but surrogates
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def _nested(depth: int, leaf: object = 1.0) -> object:
    out: object = leaf
    for _ in range(depth):
        out = [out]
    return out


# hostile replacements: wrong types, numbers as strings, nulls, empties, deep and huge values
HOSTILE = st.one_of(
    JSON_VALUES,
    st.sampled_from(["1.5", "NaN", "", " ", "true", "[1]", "null", "-0"]),
    st.sampled_from([[], {}, [[]], [None], [""], [True], [[1.0, "x"]], {"a": [1]}]),
    st.integers(1, 400).map(_nested),
    st.sampled_from([10_000, 200_000]).map(lambda n: "x" * n),
)


def _nodes(doc: object) -> list[tuple]:
    """The path (keys and indexes) of every node below the root, in document order."""
    out: list[tuple] = []
    stack: list[tuple[tuple, object]] = [((), doc)]
    while stack:
        path, node = stack.pop()
        if path:
            out.append(path)
        if isinstance(node, (dict, list)):
            children = node.items() if isinstance(node, dict) else enumerate(node)
            stack.extend(((*path, k), v) for k, v in reversed(list(children)))
    return out


def _parent(doc: object, path: tuple) -> object:
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def damaged(draw: st.DrawFn, doc: object) -> object:
    """``doc`` after one to three structural mutations at random places."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        paths = _nodes(doc)
        if not paths:
            return draw(HOSTILE)
        path = draw(st.sampled_from(paths))
        parent, key = _parent(doc, path), path[-1]
        node = parent[key]
        op = draw(
            st.sampled_from(
                ["replace", "delete", "null", "stringify", "wrap", "empty", "duplicate", "cut"]
            )
        )
        if op == "replace":
            parent[key] = draw(HOSTILE)
        elif op == "delete":
            del parent[key]
        elif op == "null":
            parent[key] = None
        elif op == "stringify":  # numbers (and lists) as strings
            parent[key] = json.dumps(node)
        elif op == "wrap":
            parent[key] = [node]
        elif op == "empty":
            parent[key] = {} if isinstance(node, dict) else []
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(node))
        elif op == "cut" and isinstance(node, list):
            parent[key] = node[: draw(st.integers(0, max(len(node) - 1, 0)))]
    return doc


# ---- damage: text and bytes --------------------------------------------------------------

# a JSON string, number or literal (a string matches first, so digits inside one are skipped)
TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null')
LITERALS = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "1" * 5000,  # past Python's int digit limit
        '"1.5"',
        '"\\ud800"',  # a lone surrogate escape
        '"\\u0000"',
        "[" * 1000 + "]" * 1000,
        "[" * 100_000 + "]" * 100_000,
        "{}",
        "[]",
    ]
)
BOM = b"\xef\xbb\xbf"


@st.composite
def corrupted(draw: st.DrawFn, text: str) -> bytes:
    """``text`` as UTF-8 after zero to two text or byte mutations."""
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(["token", "duplicate_key", "bom", "truncate", "bytes"]))
        tokens = list(TOKEN.finditer(text))
        if op == "token" and tokens:
            m = draw(st.sampled_from(tokens))
            text = text[: m.start()] + draw(LITERALS) + text[m.end() :]
        elif op == "duplicate_key" and "{" in text:  # the later key wins in Python's json
            at = draw(st.sampled_from([i for i, c in enumerate(text) if c == "{"]))
            key = draw(st.sampled_from(["train_context", "mem_target", "step", "x"]))
            value = json.dumps(draw(HOSTILE))
            text = f"{text[: at + 1]}{json.dumps(key)}: {value}, {text[at + 1 :]}"
        elif op == "bom":
            text = "\ufeff" + text
        elif op == "truncate":
            text = text[: draw(st.integers(0, max(len(text) - 1, 0)))]
        elif op == "bytes":  # arbitrary bytes, usually not UTF-8
            data = text.encode("utf-8", "surrogatepass")
            at = draw(st.integers(0, len(data)))
            junk = draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b"\xff", b"\xc3"]))
            return data[:at] + junk + data[at:]
    return text.encode("utf-8", "surrogatepass")


# ---- knowledge items ---------------------------------------------------------------------

WORDS = st.text(min_size=1, max_size=24).filter(str.strip)
KNOWN = ("train_context", *(f for pair in DEPTH_FIELDS.values() for f in pair), "paraphrases")


@st.composite
def item_records(draw: st.DrawFn) -> dict:
    """One valid record in the paper's format (unknown fields included, as the paper's have)."""
    rec: dict = {"train_context": draw(WORDS)}
    for fin, ftg in DEPTH_FIELDS.values():
        pairs = draw(st.lists(st.tuples(WORDS, WORDS), max_size=3))
        rec[fin], rec[ftg] = [p[0] for p in pairs], [p[1] for p in pairs]
    if draw(st.booleans()):
        rec["paraphrases"] = draw(st.lists(WORDS, max_size=3))
    extra = draw(st.dictionaries(TEXT.filter(lambda k: k not in KNOWN), JSON_VALUES, max_size=2))
    return {**rec, **extra}


ITEM_FILES = st.lists(
    item_records(), min_size=1, max_size=4, unique_by=lambda r: r["train_context"]
)


def _items_text(records: object, suffix: str, indent: int | None, ascii_only: bool) -> str:
    if suffix == ".jsonl" and isinstance(records, list):
        return "".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in records)
    return json.dumps(records, indent=indent, ensure_ascii=ascii_only)


FORMATS = st.tuples(st.sampled_from([".json", ".jsonl"]), st.sampled_from([None, 1]), st.booleans())


def _as_json(items: list[KnowledgeItem]) -> str:
    """Items as text, extra fields included (NaN compares equal as text, not as a float)."""
    return json.dumps([it.to_json() for it in items])


def check_items_file(path: Path, fuzz_dir: Path) -> list[KnowledgeItem] | None:
    """The property for one file: refused in one line, or items that are whole and survive
    ``save_items`` → ``load_items`` in both formats, unchanged."""
    items = read_or_refuse(lambda: load_items(path), str(path))
    if items is None:
        return None
    assert items and all(isinstance(it, KnowledgeItem) for it in items)
    for it in items:
        assert isinstance(it.train_context, str) and it.train_context.strip()
        assert set(it.probes) == {"memorization", "semantic", "composition"}
    for suffix in (".json", ".jsonl"):
        again = fuzz_dir / f"again{suffix}"
        save_items(items, again)
        back = load_items(again)
        assert back == items and _as_json(back) == _as_json(items)
    return items


@settings(FUZZ, max_examples=75)
@given(records=ITEM_FILES, fmt=FORMATS, bom=st.booleans())
@example(  # U+2028 is a line break to str.splitlines(), not to JSON
    records=[{**{f: [] for f in KNOWN[1:]}, "train_context": "a\u2028b\x85c"}],
    fmt=(".jsonl", None, False),
    bom=False,
)
def test_valid_items_read_back_exactly(records, fmt, bom, fuzz_dir):
    suffix, indent, ascii_only = fmt
    path = fuzz_dir / f"valid{suffix}"
    path.write_bytes((BOM if bom else b"") + _items_text(records, *fmt).encode())
    items = check_items_file(path, fuzz_dir)
    assert items is not None, "a valid file was refused"
    assert [it.train_context for it in items] == [r["train_context"] for r in records]
    # to_json leaves out an empty paraphrase list; compared as text, where NaN equals NaN
    want = [{k: v for k, v in r.items() if k != "paraphrases" or v} for r in records]
    got = [it.to_json() for it in items]
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)


@FUZZ
@given(data=st.data(), fmt=FORMATS)
def test_damaged_item_files_read_or_refuse_in_one_line(data, fmt, fuzz_dir):
    records = data.draw(ITEM_FILES.flatmap(damaged), label="records")
    suffix = fmt[0]
    text = _items_text(records, *fmt)
    raw = data.draw(corrupted(text), label="bytes")
    path = fuzz_dir / f"damaged{suffix}"
    path.write_bytes(raw)
    check_items_file(path, fuzz_dir)


def _valid_with(extra: str) -> bytes:
    """One valid item whose unknown field ``x`` holds the JSON text ``extra``."""
    rec = {f: [] for f in KNOWN[1:]} | {"train_context": "A b."}
    return f'[{json.dumps(rec)[:-1]}, "x": {extra}}}]'.encode()


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("deep.json", b"[" * 100_000, "nested too deeply"),
        ("deep.jsonl", b"[" * 100_000 + b"\n", "nested too deeply at line 1"),
        ("bigint.json", b'[{"x": ' + b"1" * 5000 + b"}]", "too many digits"),
        ("surrogate.json", b'[{"train_context": "a \\udc00"}]', "item 0, field 'train_context'"),
        ("extra.json", _valid_with("[" * 200 + "]" * 200), "item 0, field 'x': nested deeper"),
        ("extra2.json", _valid_with('"\\ud800"'), "item 0, field 'x': lone surrogate"),
        ("empty.json", b"", "line 1 column 1"),
        ("empty.jsonl", b"\n\n", "no items"),
        ("nan.json", b"[NaN]", "item 0"),
    ],
)
@HANG
def test_item_file_crashes_found_by_fuzzing(tmp_path, name, raw, says):
    """Each of these was a traceback (RecursionError, ValueError, UnicodeEncodeError on save,
    RecursionError on save) before the reader learned to refuse it."""
    path = tmp_path / name
    path.write_bytes(raw)
    with pytest.raises(DataError, match=re.escape(says)) as e:
        load_items(path)
    assert_one_line(e.value, str(path))


def test_item_file_with_bom_and_line_separators_reads(tmp_path):
    """A BOM (Windows editors) is dropped; U+2028 inside a JSON Lines string is no line end."""
    rec = {f: [] for f in KNOWN[1:]} | {"train_context": "one\u2028two"}
    for suffix in (".json", ".jsonl"):
        path = tmp_path / f"bom{suffix}"
        path.write_bytes(BOM + _items_text([rec], suffix, None, False).encode())
        assert load_items(path)[0].train_context == "one\u2028two"


# ---- reference logs ----------------------------------------------------------------------

LOSSES = st.floats(0, 30, allow_nan=False)


@st.composite
def reference_logs(draw: st.DrawFn) -> list[dict]:
    """A valid published-format log: every prefix's ``_target`` (ragged probe lists allowed),
    maybe ``_first``/``_full``, ``def`` and absolute ``step`` numbers."""
    n_steps, n_items = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    widths = {
        p: draw(st.lists(st.integers(0, 3), min_size=n_items, max_size=n_items)) for p in PREFIXES
    }
    if not any(sum(w) for w in widths.values()):
        widths["mem"][0] = 1
    suffixes = ["target", *draw(st.sets(st.sampled_from(["first", "full"])))]
    with_def, start = draw(st.booleans()), draw(st.none() | st.integers(0, 10**6))
    steps = [start or 0]
    for _ in range(n_steps - 1):
        steps.append(steps[-1] + draw(st.integers(1, 1000)))
    records = []
    for s in steps:
        rec: dict = {} if start is None else {"step": s}
        for p, w in widths.items():
            for suffix in suffixes:
                rec[f"{p}_{suffix}"] = [[draw(LOSSES) for _ in range(n)] for n in w]
        if with_def:
            rec["def"] = [draw(LOSSES) for _ in range(n_items)]
        records.append(rec)
    return records


def check_reference_log(path: Path) -> object | None:
    """The property for one log: refused in one line, or a Run whose arrays agree in shape."""
    run = read_or_refuse(lambda: read_reference_log(path), str(path))
    if run is None:
        return None
    n_steps, n_probes = len(run.steps), len(run.probes)
    assert n_probes > 0 and run.steps[0] == 0 and (np.diff(run.steps) > 0).all()
    assert run.logprobs.shape == (n_steps, n_probes, len(STATS))
    assert not np.isinf(run.logprobs).any()
    return run


@settings(FUZZ, max_examples=50)
@given(records=reference_logs())
def test_valid_reference_logs_read(records, fuzz_dir):
    path = fuzz_dir / "valid_log.json"
    path.write_text(json.dumps(records))
    run = check_reference_log(path)
    assert run is not None, "a valid log was refused"
    widths = [len(p) for prefix in PREFIXES for p in records[0][f"{prefix}_target"]]
    assert len(run.probes) == sum(widths)
    losses = sorted(v for r in records for k in PREFIXES for p in r[f"{k}_target"] for v in p)
    assert sorted((-run.stat("target_mean")).ravel().tolist()) == pytest.approx(losses)


@FUZZ
@given(data=st.data())
def test_damaged_reference_logs_read_or_refuse_in_one_line(data, fuzz_dir):
    records = data.draw(reference_logs().flatmap(damaged), label="records")
    raw = data.draw(corrupted(json.dumps(records)), label="bytes")
    path = fuzz_dir / "damaged_log.json"
    path.write_bytes(raw)
    check_reference_log(path)


def _log(mem: object, **more: object) -> list[dict]:
    return [
        {"step": 0, "mem_target": mem, "gen_target": [[1.0]], "gen_hard_target": [[1.0]]} | more
    ]


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        (_log([1.0]), "step 0, field 'mem_target'[0]: expected a list of probe losses"),
        (_log([[1.0], [2.0, [3]]]), "step 0, field 'mem_target'[1][1]: expected a number"),
        (_log([[1.0], ["ab"]]), "'mem_target'[1][0]: expected a number, got str"),
        (_log([["1.5"]]), "'mem_target'[0][0]: expected a number, got str"),
        (_log([[{"a": 1}], [1.0, 2.0]]), "'mem_target'[0][0]: expected a number, got dict"),
        (_log([[1.0]], step=float("inf")), "field 'step': expected an integer"),
        (_log([[1.0]], step=2**70), "field 'step': expected an integer"),
        (_log([[1.0]], step="3"), "field 'step': expected an integer, got str"),
        (_log([[float("inf")]]), "'mem_target'[0][0]: infinite loss"),
        ([{"step": 0, **{f"{p}_target": [[]] for p in PREFIXES}}], "no probe losses"),
        (_log([]), "field 'mem_target' lists no items"),
        (_log([[1.0]], mem_first=[[1.0], [2.0]]), "field 'mem_first' is a 2x1"),  # np.stack
    ],
)
def test_reference_log_crashes_found_by_fuzzing(tmp_path, doc, says):
    """The first five were TypeError / ValueError tracebacks, the step ones OverflowError; a
    string loss was read as a number and an all-empty log gave a Run with no probes."""
    path = tmp_path / "log.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=re.escape(says)) as e:
        read_reference_log(path)
    assert_one_line(e.value, str(path))


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"[" * 100_000, "nested too deeply"),
        (json.dumps(_log([[1.0]])).replace("1.0", "1" * 5000, 1).encode(), "too many digits"),
        (json.dumps(_log([[1.0]])).replace("1.0", "1" + "0" * 400, 1).encode(), "out of range"),
        (b"\xff\xfe[]", "not UTF-8"),
        (BOM + json.dumps(_log([[1.0]])).encode(), ""),  # a BOM is dropped: reads
    ],
)
@HANG
def test_reference_log_bytes_found_by_fuzzing(tmp_path, raw, says):
    path = tmp_path / "log.json"
    path.write_bytes(raw)
    if not says:
        assert check_reference_log(path) is not None
        return
    with pytest.raises(DataError, match=says) as e:
        read_reference_log(path)
    assert_one_line(e.value, str(path))


def test_reference_log_directory_is_refused(tmp_path):
    path = tmp_path / "log.json"
    path.mkdir()  # IsADirectoryError before
    with pytest.raises(DataError, match="cannot read") as e:
        read_reference_log(path)
    assert_one_line(e.value, str(path))


# ---- configuration -----------------------------------------------------------------------

SECTIONS = {name: f.annotation.model_fields for name, f in RunConfig.model_fields.items()}
NAME = st.text(string.ascii_letters + string.digits + "_- ", min_size=1, max_size=10)
YAML_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["fp32", "bf16", "auto", "cosine", "duplicate", "paraphrase", "world"])
)
YAML_VALUES = st.recursive(
    YAML_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAME, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def config_docs(draw: st.DrawFn) -> object:
    """A config mapping: known sections and keys mostly, unknown ones sometimes, any values;
    now and then no mapping at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(YAML_VALUES)
    doc: dict = {}
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)) | NAME, max_size=3)):
        keys = sorted(SECTIONS.get(section, {})) or ["x"]
        if draw(st.integers(0, 5)) == 0:
            doc[section] = draw(YAML_VALUES)
            continue
        names = st.lists(st.sampled_from(keys) | NAME, max_size=3)
        doc[section] = {k: draw(YAML_VALUES) for k in draw(names)}
    return doc


# --set values that are valid YAML: a value YAML cannot parse is a known crash (below)
SET_VALUES = st.sampled_from(
    ["1", "0", "-3", "2.5", "1e-3", "true", "null", "", "x y", "[1, 2]", "{a: 1}", "fp32", "nan"]
)


@st.composite
def overrides(draw: st.DrawFn) -> list[str]:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        section = draw(st.sampled_from(sorted(SECTIONS)) | NAME)
        keys = sorted(SECTIONS.get(section, {})) or ["x"]
        key = draw(st.sampled_from([f"{section}.{k}" for k in keys]) | NAME)
        out.append(key + draw(st.sampled_from(["=", "", "=="])) + draw(SET_VALUES))
    return out


def check_config(path: Path, sets: list[str], fuzz_dir: Path) -> RunConfig | None:
    """The property for one config: refused in one line naming the file (or ``--set``), or a
    RunConfig whose resolved YAML reads back to itself."""
    cfg = read_or_refuse(lambda: load_config(path, sets), str(path), "--set")
    if cfg is None:
        return None
    assert isinstance(cfg, RunConfig)
    again = fuzz_dir / "resolved.yaml"
    again.write_text(dump_config(cfg), encoding="utf-8")
    assert dump_config(load_config(again)) == dump_config(cfg)
    return cfg


@settings(FUZZ, max_examples=100)
@given(doc=config_docs(), sets=overrides())
def test_config_documents_load_or_refuse_in_one_line(doc, sets, fuzz_dir):
    path = fuzz_dir / "config.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    check_config(path, sets, fuzz_dir)


YAML_LITERALS = st.sampled_from(
    [
        "!!python/object:os.system {}",
        "!!python/object/apply:os.system [echo]",
        "!!binary aGk=",
        "!!set {a, b}",
        "&a [*a]",
        "2024-01-01",
        ".inf",
        "1" * 5000,  # past Python's int digit limit: ValueError in safe_load
        "[" * 1500,  # deep nesting: RecursionError in safe_load
        "'a\\nb'",
    ]
)


@st.composite
def corrupted_yaml(draw: st.DrawFn, text: str) -> bytes:
    """A YAML text with one scalar swapped for a hostile literal, and maybe damaged bytes."""
    lines = text.splitlines()
    at = draw(st.integers(0, max(len(lines) - 1, 0)))
    if lines and ":" in lines[at]:
        head = lines[at].split(":", 1)[0]
        lines[at] = f"{head}: {draw(YAML_LITERALS)}"
    return draw(corrupted("\n".join(lines) + "\n"))


@settings(FUZZ, max_examples=50)
@given(data=st.data())
def test_hostile_config_bytes_load_or_refuse_in_one_line(data, fuzz_dir):
    doc = data.draw(config_docs().filter(lambda d: isinstance(d, dict) and d), label="doc")
    raw = data.draw(corrupted_yaml(yaml.safe_dump(doc)), label="bytes")
    path = fuzz_dir / "hostile.yaml"
    path.write_bytes(raw)
    check_config(path, [], fuzz_dir)


@settings(FUZZ, max_examples=100)
@given(sets=st.lists(st.text(max_size=20), min_size=1, max_size=3))
@example(sets=["train.steps=["])
@example(sets=["a\nb=1"])
def test_any_set_string_loads_or_refuses_in_one_line(sets, fuzz_dir):
    path = fuzz_dir / "plain.yaml"
    path.write_text("train:\n  steps: 3\n", encoding="utf-8")
    check_config(path, sets, fuzz_dir)


@pytest.mark.parametrize(
    ("raw", "sets"),
    [
        (b"train:\n  seed: \xff\n", []),  # non-UTF-8 (was UnicodeDecodeError)
        (b"a: " + b"[" * 100_000, []),  # deep nesting (was RecursionError)
        (b"train:\n  steps: " + b"1" * 5000, []),  # a 5000-digit int (was ValueError)
        (b"", ["train.steps=["]),  # a bad --set value (was ParserError)
        (b"", ["model.name=!!python/object/apply:os.system [echo]"]),  # (was ConstructorError)
        (b'"a\\nb": 1\n', []),  # a key with a line break (was a two-line message)
        (b"!!python/object/apply:os.system [echo]\n", []),  # safe_load refuses: one line
        (b"a: &a [*a]\n", []),
    ],
)
@HANG
def test_config_crashes_found_by_fuzzing(tmp_path, raw, sets):
    path = tmp_path / "config.yaml"
    path.write_bytes(raw)
    assert check_config(path, sets, tmp_path) is None
