"""YAML files and ``--set section.key=value`` strings read into raw mappings, before
validation; every failure one line naming the file or the option.

YAML is read with floats in exponent notation (``1e-3``) as numbers, as a user means them.
A path means what it says: a packaged preset or grid is named bare (``tiny``, ``olmo-1b``),
and a path that names no file is an error, never a packaged name (:func:`find_yaml`).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import yaml

from factdyn.errors import DataError


class _Loader(yaml.SafeLoader):
    """YAML 1.1 as PyYAML reads it, but ``1e-3`` is a float (YAML 1.2 and every user agree)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def read_yaml(text: str, where: str) -> object:
    """Parse YAML text; any syntax error or absurd nesting is one line naming ``where``."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        raise DataError(f"{where}: YAML error: {' '.join(str(e).split())}") from None
    except RecursionError:
        raise DataError(f"{where}: nested too deeply to be a configuration") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise DataError(f"{where}: {' '.join(str(e).split())}") from None


def _parse_value(text: str, where: str) -> object:
    """A command-line value, read as YAML so numbers, booleans, null and lists work."""
    return read_yaml(text, where) if text != "" else ""


def apply_overrides(raw: dict, overrides: list[str], source: str = "--set") -> dict:
    """Apply ``section.key=value`` overrides to a raw config dict (copied)."""
    out = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for ov in overrides:
        key, eq, value = ov.partition("=")
        parts = key.strip().split(".")
        if not eq or not all(p.strip() for p in parts):
            raise DataError(
                f"{source} {ov!r}: expected section.key=value, with '=' and no space "
                "(e.g. --set optim.lr=1e-3)"
            )
        node = out
        for p in parts[:-1]:
            if not isinstance(node, dict):
                break
            node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise DataError(f"{source} {ov!r}: '{'.'.join(parts[:-1])}' is not a section")
        node[parts[-1]] = _parse_value(value, f"{source} {ov!r}")
    return out


def did_you_mean(word: str, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the choice closest to ``word``, or ``""``."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def find_yaml(name: str | Path, packaged: Path, kind: str, base: Path | None = None) -> Path:
    """The file ``name`` means: a file at that path (a relative one taken from ``base``,
    default the working directory); else, for a bare name (no folder part: ``tiny``,
    ``tiny.yaml``), the packaged ``packaged/<name>.yaml``. A path that names no file is
    refused in one line, never read as a packaged name."""
    text = str(name)
    path = Path(text)
    here = path if base is None or path.is_absolute() else Path(base) / path
    if here.is_file():
        return here
    stem = path.name.removesuffix(".yaml")
    names = sorted(p.stem for p in packaged.glob("*.yaml"))
    if "/" in text or os.sep in text or text in ("", ".", ".."):
        hint = f" (the packaged {kind} is named without a folder: {stem})" if stem in names else ""
        raise DataError(f"{text if base is None else here}: no such {kind} file{hint}")
    if stem not in names:
        raise DataError(
            f"{text}: no such {kind} file or packaged {kind}{did_you_mean(stem, names)} "
            f"(packaged {kind}s: {', '.join(names)})"
        )
    return packaged / f"{stem}.yaml"


def read_mapping(path: str | Path, packaged: Path, kind: str, base: Path | None = None) -> dict:
    """A YAML mapping from the file ``path`` means (:func:`find_yaml`: a file, or a packaged
    one by its bare name); every failure one line naming it."""
    path = find_yaml(path, packaged, kind, base)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    raw = read_yaml(text, str(path)) or {}
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a mapping of sections")
    return raw
