"""YAML files and ``--set section.key=value`` strings read into raw mappings, before
validation; every failure one line naming the file or the option.

YAML is read with floats in exponent notation (``1e-3``) as numbers, as a user means them.
"""

from __future__ import annotations

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


def read_mapping(path: str | Path, packaged: Path, kind: str) -> dict:
    """A YAML mapping from a file, or from ``packaged/<name>.yaml`` when ``path`` is no file
    (a preset, a packaged grid); every failure one line naming it."""
    path = Path(path)
    if not path.is_file():
        found = packaged / f"{path.name.removesuffix('.yaml')}.yaml"
        if not found.is_file():
            names = ", ".join(sorted(p.stem for p in packaged.glob("*.yaml")))
            raise DataError(f"{path}: no such {kind} file or packaged {kind} ({names})")
        path = found
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    raw = read_yaml(text, str(path)) or {}
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a mapping of sections")
    return raw
