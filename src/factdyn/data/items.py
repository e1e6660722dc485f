"""Knowledge items and probes in the Fictional Knowledge format (docs/method.md#knowledge-items-and-probes).

The paper's JSON (a list of objects) is the interchange format: we read it unchanged, also as
JSON Lines or from a Hugging Face hub dataset, and write it back with the same field names.
Every problem is reported as a one-line :class:`DataError` naming file, item and field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from factdyn.errors import DataError
from factdyn.files import write_text_atomic

DEPTHS: tuple[str, ...] = ("memorization", "semantic", "composition")

# depth -> (input field, target field) in the paper's JSON.
DEPTH_FIELDS: dict[str, tuple[str, str]] = {
    "memorization": ("mem_input", "mem_target"),
    "semantic": ("gen_input", "gen_target"),
    "composition": ("hard_gen_input", "hard_gen_target"),
}


@dataclass(frozen=True)
class Probe:
    """A cloze probe: ``input + " " + target`` is the full text; the target is scored."""

    input: str
    target: str

    @property
    def text(self) -> str:
        return f"{self.input} {self.target}"


@dataclass(frozen=True)
class KnowledgeItem:
    """One fictional-entity paragraph, its paraphrases and its probes at three depths."""

    train_context: str
    probes: dict[str, tuple[Probe, ...]]
    paraphrases: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, compare=False)

    def variant(self, i: int) -> str:
        """Text of injection ``i`` in the paraphrase scenario: 0 is the paragraph itself."""
        if i == 0:
            return self.train_context
        if i - 1 >= len(self.paraphrases):
            raise IndexError(f"item has {len(self.paraphrases)} paraphrases, variant {i} asked")
        return self.paraphrases[i - 1]

    def to_json(self) -> dict:
        out: dict = {"train_context": self.train_context}
        for depth, (fin, ftg) in DEPTH_FIELDS.items():
            out[fin] = [p.input for p in self.probes.get(depth, ())]
            out[ftg] = [p.target for p in self.probes.get(depth, ())]
        if self.paraphrases:
            out["paraphrases"] = list(self.paraphrases)
        out.update(self.extra)
        return out


# Nesting allowed in a field we keep unread (``extra``): save_items writes it back, and Python's
# JSON encoder recurses once per level. The paper's own fields are two levels deep.
MAX_DEPTH = 64


def _check_text(s: str, where: str) -> None:
    """A non-blank string that UTF-8 can hold: a JSON ``\\ud800`` escape decodes to a lone
    surrogate, which no tokenizer and no UTF-8 file (save_items) accepts."""
    if not s.strip():
        raise DataError(f"{where}: empty string")
    _check_unicode(s, where)


def _check_unicode(s: str, where: str) -> None:
    """Refuse a string UTF-8 cannot encode (a lone surrogate from a ``\\u`` escape)."""
    if s.isascii():
        return
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DataError(
            f"{where}: lone surrogate \\u{ord(s[e.start]):04x} at character {e.start} "
            "(not valid Unicode)"
        ) from None


def _field(key: str) -> str:
    """A field name for a message: quoted, escaped to one line, cut if long."""
    name = repr(key)
    return name if len(name) <= 60 else f"{name[:56]}...{name[0]}"


def _check_extra(key: str, value: object, where: str) -> None:
    """An unknown field is kept and written back as is: refuse what save_items could not
    write (lone surrogates, nesting past MAX_DEPTH). Iterative, so depth costs no stack."""
    _check_unicode(key, f"{where}, field name {_field(key)}")
    where = f"{where}, field {_field(key)}"
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            _check_unicode(v, where)
        elif isinstance(v, (list, dict)):
            if depth >= MAX_DEPTH:
                raise DataError(f"{where}: nested deeper than {MAX_DEPTH} levels")
            if isinstance(v, dict):
                for k, x in v.items():
                    _check_unicode(k, where)
                    stack.append((x, depth + 1))
            else:
                stack.extend((x, depth + 1) for x in v)


def _str_list(obj: dict, key: str, where: str, required: bool = True) -> list[str]:
    if obj.get(key) is None:  # a hub dataset row has None where a record lacks the field
        if required:
            raise DataError(f"{where}: missing field '{key}'")
        return []
    value = obj[key]
    if not isinstance(value, list):
        raise DataError(
            f"{where}, field '{key}': expected a list of strings, got {type(value).__name__}"
        )
    for j, s in enumerate(value):
        if not isinstance(s, str):
            raise DataError(
                f"{where}, field '{key}'[{j}]: expected a string, got {type(s).__name__}"
            )
        _check_text(s, f"{where}, field '{key}'[{j}]")
    return value


def item_from_json(obj: object, where: str) -> KnowledgeItem:
    """Build and validate one item; ``where`` (e.g. ``"data.json, item 3"``) prefixes errors."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected an object, got {type(obj).__name__}")
    ctx = obj.get("train_context")
    if ctx is None:
        raise DataError(f"{where}: missing field 'train_context'")
    if not isinstance(ctx, str):
        raise DataError(
            f"{where}, field 'train_context': expected a string, got {type(ctx).__name__}"
        )
    _check_text(ctx, f"{where}, field 'train_context'")
    probes: dict[str, tuple[Probe, ...]] = {}
    for depth, (fin, ftg) in DEPTH_FIELDS.items():
        inputs, targets = _str_list(obj, fin, where), _str_list(obj, ftg, where)
        if len(inputs) != len(targets):
            raise DataError(
                f"{where}, field '{ftg}': {len(targets)} targets for {len(inputs)} inputs in '{fin}'"
            )
        probes[depth] = tuple(Probe(i, t) for i, t in zip(inputs, targets, strict=True))
    paraphrases = tuple(_str_list(obj, "paraphrases", where, required=False))
    known = {"train_context", "paraphrases", *(f for pair in DEPTH_FIELDS.values() for f in pair)}
    extra = {k: v for k, v in obj.items() if k not in known}
    for k, v in extra.items():
        _check_extra(k, v, where)
    return KnowledgeItem(ctx, probes, paraphrases, extra)


def parse_items(records: Sequence[object], source: str) -> list[KnowledgeItem]:
    """Validate a list of raw records; duplicate items (same paragraph) are an error."""
    items: list[KnowledgeItem] = []
    seen: dict[str, int] = {}
    for i, rec in enumerate(records):
        item = item_from_json(rec, f"{source}, item {i}")
        if item.train_context in seen:
            raise DataError(
                f"{source}, item {i}, field 'train_context': duplicate of item {seen[item.train_context]}"
            )
        seen[item.train_context] = i
        items.append(item)
    if not items:
        raise DataError(f"{source}: no items")
    return items


def read_utf8(path: Path) -> str:
    """A file's text as UTF-8 (a leading BOM, as some editors write, is dropped); any OS or
    decoding failure is one DataError naming the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or type(e).__name__})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 (byte {e.start}: {e.reason})") from None


def parse_json(text: str, where: str, line: int | None = None) -> object:
    """``json.loads`` whose every failure is one DataError: a syntax error (at ``line`` when
    ``text`` is one line of a larger file), nesting too deep for the parser's recursion, an
    integer past Python's digit limit."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{where}: JSON syntax error at line {line or e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except RecursionError:
        at = f" at line {line}" if line else ""
        raise DataError(f"{where}: JSON nested too deeply{at}") from None
    except ValueError:  # int() of a number with thousands of digits: no position is known
        at = f" at line {line}" if line else ""
        raise DataError(f"{where}: JSON number with too many digits{at}") from None


def _read_json_records(path: Path) -> list[object]:
    text = read_utf8(path)
    if path.suffix == ".jsonl":
        # split on "\n" only: str.splitlines() also splits at U+2028, U+0085, ... which JSON
        # strings may hold unescaped (save_items writes them so)
        return [
            parse_json(line, str(path), lineno)
            for lineno, line in enumerate(text.split("\n"), 1)
            if line.strip()
        ]
    data = parse_json(text, str(path))
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of items, got {type(data).__name__}")
    return data


def _read_hub(source: str, split: str) -> list[object]:
    """A hub dataset id, or a local dataset directory (data files, or ``save_to_disk``
    output), read through ``datasets``. Columns a record lacks come back as None: dropped."""
    import datasets

    path = Path(source)
    try:
        if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[split]
        else:
            ds = datasets.load_dataset(source, split=split)
    except Exception as e:  # datasets raises many types; the user needs the one line
        raise DataError(
            f"{source}: cannot load as a dataset ({type(e).__name__}: {e})".splitlines()[0]
        ) from None
    return [{k: v for k, v in dict(row).items() if v is not None} for row in ds]


def load_items(source: str | Path, split: str = "train") -> list[KnowledgeItem]:
    """Read items from a ``.json``/``.jsonl`` file, a dataset directory or a hub dataset id."""
    path = Path(source)
    if path.is_file():
        return parse_items(_read_json_records(path), str(path))
    hub_like = path.suffix not in (".json", ".jsonl") and not path.exists()
    if path.is_dir() or (isinstance(source, str) and "/" in source and hub_like):
        return parse_items(_read_hub(str(source), split), str(source))
    raise DataError(f"{source}: no such file")


def save_items(items: Iterable[KnowledgeItem], path: str | Path) -> None:
    """Write items in the paper's format (``.jsonl`` writes one object per line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [it.to_json() for it in items]
    if path.suffix == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        text = json.dumps(records, ensure_ascii=False, indent=1)
    write_text_atomic(path, text)
