"""Writing files so that a reader sees the old version or the new one, never half of one.

Every file factdyn writes goes through :func:`atomic_file` (or its text / JSON shorthands),
every output directory through :func:`atomic_dir`: the content is written under a unique
hidden temporary name beside the destination and moved into place with one rename.
:func:`json_safe` is the one conversion of numpy values and non-finite floats to strict JSON.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def _temp_name(dest: Path, kind: str) -> Path:
    """A fresh hidden name beside ``dest`` (same filesystem, so the final rename is atomic)."""
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".{kind}", dir=dest.parent)
    os.close(fd)
    os.unlink(name)
    return Path(name)


@contextmanager
def atomic_file(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``dest``, on error it is removed."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(dest, "tmp")
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(dest: str | Path, text: str) -> None:
    with atomic_file(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(dest: str | Path, obj: object, indent: int | None = 1) -> None:
    """Strict JSON (NaN and ±inf as null) written atomically."""
    text = json.dumps(json_safe(obj), indent=indent, ensure_ascii=False, allow_nan=False)
    write_text_atomic(dest, text)


@contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory to fill; on success it takes the place of ``dest``
    (see :func:`replace_dir`), on error it is removed and ``dest`` is untouched."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(tmp: Path, dest: Path) -> Path:
    """Put a fully written directory ``tmp`` in place of ``dest``: readers see the old or the
    new one whole, never a mix (the old one is moved aside under a unique name, then removed)."""
    if dest.exists():
        old = _temp_name(dest, "old")
        dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(dest)
    return dest


def json_safe(obj: object) -> object:
    """Strict-JSON values: NaN and ±inf become None, numpy scalars and arrays Python values,
    tuples lists, keys strings."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [json_safe(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj
