"""Writing files so that a reader sees the old version or the new one, never half of one,
and so that a command never deletes or replaces what it did not create.

Every file factdyn writes goes through :func:`atomic_file` (or its text / JSON shorthands): the
content is written under a unique hidden temporary name beside the destination and moved into
place with one rename. A new directory is built whole under a temporary name and renamed into
place (:func:`atomic_dir`); a directory that already exists only has the files the command
writes replaced, one atomic rename each (:func:`output_dir`), so files a user put beside them
stay. :func:`prepare_output` is the policy every command applies to its ``--out`` before any
work: no output over an existing file, inside a run directory (but its documented places), or
into a non-empty directory without ``--overwrite``. :func:`json_safe` is the one conversion of
numpy values and non-finite floats to strict JSON.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from factdyn.errors import DataError

# A run directory is recognised by these files (see factdyn.rundir).
RUN_MARKERS: tuple[str, ...] = ("meta.json", "logprobs.npy")


def _temp_name(dest: Path, kind: str) -> Path:
    """A fresh hidden name beside ``dest`` (same filesystem, so the final rename is atomic)."""
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".{kind}", dir=dest.parent)
    os.close(fd)
    os.unlink(name)
    return Path(name)


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those created, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _undo_parents(created: list[Path]) -> None:
    """Remove folders :func:`_make_parents` created, if a failed write left them empty."""
    for p in created:
        try:
            p.rmdir()
        except OSError:
            return


def _name_output(e: OSError, tmp: Path, dest: Path) -> None:
    """An error about a staged file names the output it was going to be, not the temporary."""
    name = str(e.filename) if e.filename is not None else ""
    if name == str(tmp) or name.startswith(f"{tmp}{os.sep}"):
        e.filename = str(dest) + name[len(str(tmp)) :]


@contextmanager
def atomic_file(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``dest``, on error it is
    removed (with any folder made for it)."""
    dest = Path(dest)
    created = _make_parents(dest.parent)
    tmp = _temp_name(dest, "tmp")
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        _undo_parents(created)
        if isinstance(e, OSError):
            _name_output(e, tmp, dest)
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
    created = _make_parents(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        replace_dir(tmp, dest)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        _undo_parents(created)
        if isinstance(e, OSError):
            _name_output(e, tmp, dest)
        raise


# Written into a directory just before :func:`replace_dir` moves it aside, so the backup
# carries the proof that factdyn made it (its content: the name of the directory it backs up).
SWAP_MARKER = ".factdyn-swap"


def _backup(dest: Path) -> Path:
    """The one name the old ``dest`` has while :func:`replace_dir` swaps it: fixed (not
    random) so that the next call finds it after a crash."""
    return dest.parent / f".{dest.name}.factdyn-old"


def _own_backup(dest: Path) -> Path | None:
    """The backup of ``dest`` an interrupted swap left, if there is one and factdyn made it
    (it holds SWAP_MARKER naming ``dest``); a user's folder of that name is not one."""
    old = _backup(dest)
    try:
        ours = not old.is_symlink() and (old / SWAP_MARKER).read_text("utf-8") == dest.name
    except (OSError, ValueError):
        return None
    return old if ours else None


def repair_dir(dest: str | Path) -> None:
    """Finish a swap of ``dest`` that a crash interrupted: when only the old copy is left it
    goes back in place; when the new one is in place the old copy is removed. Only a backup
    factdyn made is touched (see :func:`_own_backup`); call it when writing, after every
    check of the command passed, never before a refusal."""
    dest = Path(dest)
    old = _own_backup(dest)
    if old is None:
        return
    if dest.exists():
        shutil.rmtree(old)
    else:
        os.rename(old, dest)
        (dest / SWAP_MARKER).unlink(missing_ok=True)


def replace_dir(tmp: Path, dest: Path) -> Path:
    """Put a fully written directory ``tmp`` in place of ``dest``. The old ``dest``, marked
    as factdyn's backup, is moved to a fixed backup name first, so at every instant the old or
    the new one exists whole; a crash between the two renames is repaired by the next call
    (:func:`repair_dir`). A folder of the backup's name that factdyn did not make is refused,
    never replaced."""
    repair_dir(dest)
    if dest.exists():
        old = _backup(dest)
        if old.exists() or old.is_symlink():
            raise DataError(f"{old}: in the way of replacing {dest}, and not factdyn's backup")
        marker = dest / SWAP_MARKER
        marker.write_text(dest.name, encoding="utf-8")
        try:
            os.rename(dest, old)
        except OSError:
            marker.unlink(missing_ok=True)
            raise
        os.rename(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, dest)
    return dest


@contextmanager
def output_dir(dest: str | Path) -> Iterator[Path]:
    """Yield an empty staging directory to fill. A new ``dest`` is then renamed into place
    whole; an existing one only has the staged files moved in, each with one atomic rename,
    so nothing else in it (a user's files) is deleted or replaced. A crash midway leaves
    every file old or new and whole; the next call rewrites them all."""
    dest = Path(dest)
    repair_dir(dest)
    if not dest.exists():
        with atomic_dir(dest) as tmp:
            yield tmp
        return
    if not dest.is_dir():
        raise DataError(f"{dest}: exists and is not a directory")
    tmp = Path(tempfile.mkdtemp(prefix=".factdyn-", suffix=".tmp", dir=dest))
    try:
        yield tmp
        files = sorted(p.relative_to(tmp) for p in tmp.rglob("*") if not p.is_dir())
        for rel in files:  # check every target first: a refusal changes nothing
            _check_target(dest, rel)
        for rel in files:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, dest / rel)
    except OSError as e:
        _name_output(e, tmp, dest)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_target(dest: Path, rel: Path) -> None:
    """``dest / rel`` can take a file: no directory in its place, no file on its path."""
    target = dest / rel
    if target.is_dir() and not target.is_symlink():
        raise DataError(f"{target}: is a directory; factdyn writes a file there")
    for parent in list(rel.parents)[:-1]:
        if (dest / parent).exists() and not (dest / parent).is_dir():
            raise DataError(f"{dest / parent}: is a file; factdyn writes a folder there")


def is_run_dir(path: str | Path) -> bool:
    """A factdyn run directory (it holds every one of RUN_MARKERS)."""
    return all((Path(path) / m).is_file() for m in RUN_MARKERS)


def _run_around(path: Path, runs: Sequence[str | Path]) -> Path | None:
    """The run directory that is ``path`` or holds it, if any (``runs`` count as runs)."""
    resolved = path.resolve()
    protected = {Path(r).resolve() for r in runs}
    for p in (resolved, *resolved.parents):
        if p in protected or is_run_dir(p):
            return p
    return None


def prepare_output(
    out: str | Path,
    *,
    overwrite: bool,
    run_place: str | None = None,
    default: bool = False,
    protected_runs: Sequence[str | Path] = (),
) -> Path:
    """Refuse, before any work, an output directory whose writing could touch what factdyn
    did not create: an existing file, a run directory or a folder inside one (but
    ``RUN/<run_place>``, the command's documented place there), a non-empty directory
    without ``overwrite`` (a ``default`` output, the command's own place, needs none). With
    them, writing replaces only the command's own files (see :func:`output_dir`)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory")
    if not (out.exists() or overwrite or default) and (old := _own_backup(out)) is not None:
        raise DataError(
            f"{out}: an earlier write into it was interrupted; its content is in {old} "
            "(--overwrite puts it back and replaces factdyn's files in it, nothing else)"
        )
    run = _run_around(out, protected_runs)
    if run is not None:
        if run_place is None or out.resolve() != run / run_place:
            where = f" (the documented place is {run / run_place})" if run_place else ""
            raise DataError(f"{out}: inside the run directory {run}; write elsewhere{where}")
        return out
    if not (overwrite or default) and out.is_dir() and any(out.iterdir()):
        raise DataError(
            f"{out}: output directory exists and is not empty "
            "(--overwrite replaces factdyn's files in it, nothing else)"
        )
    return out


def prepare_output_file(
    out: str | Path, *, overwrite: bool, protected_runs: Sequence[str | Path] = ()
) -> Path:
    """The same policy for a single output file: no directory in its place, not inside a run
    directory, and an existing file replaced only with ``overwrite``."""
    out = Path(out)
    if out.is_dir():
        raise DataError(f"{out}: is a directory; give a file name")
    run = _run_around(out.parent, protected_runs)
    if run is not None:
        raise DataError(f"{out}: inside the run directory {run}; write elsewhere")
    if out.exists() and not overwrite:
        raise DataError(f"{out}: exists (--overwrite replaces it)")
    return out


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
