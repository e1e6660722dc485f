"""Knowledge items and probes in the Fictional Knowledge format (SPEC §2-3).

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
        if not s.strip():
            raise DataError(f"{where}, field '{key}'[{j}]: empty string")
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
    if not ctx.strip():
        raise DataError(f"{where}, field 'train_context': empty string")
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


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 (byte {e.start}: {e.reason})") from None


def _read_json_records(path: Path) -> list[object]:
    text = _read_text(path)
    if path.suffix == ".jsonl":
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{path}: JSON syntax error at line {lineno} column {e.colno}: {e.msg}"
                ) from None
        return records
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{path}: JSON syntax error at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
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
