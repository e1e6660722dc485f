"""What a size a user sets will cost, checked against the machine before the work starts.

A count on the command line or in a config (bootstrap resamples, training steps, a long
tail's facts, knowledge items) decides how much memory a command allocates and how much it
writes. Each command estimates that from the sizes alone and refuses, in one line with the
estimate, a size the machine cannot hold, instead of meeting the out-of-memory killer, a
MemoryError or a full disk hours later. The limits are what the machine has: its available
memory (physical, or the container's limit when that is lower) and the free space where
the files go; the callers' estimates are upper bounds measured on the code they estimate.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from factdyn.errors import DataError

_CGROUP_LIMIT = Path("/sys/fs/cgroup/memory.max")


def size(n: float) -> str:
    """Bytes in words a user compares with their machine: ``24 GB``, ``1.5 TB``, ``800 kB``."""
    for unit, scale in (("EB", 1e18), ("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            v = n / scale
            return f"{v:,.0f} {unit}" if v >= 10 or unit == "EB" else f"{v:.1f} {unit}"
    return f"{max(n, 0) / 1e3:.0f} kB"


def _container_limit() -> float:
    """The cgroup (v2) memory limit of this process's container; inf when there is none."""
    try:
        text = _CGROUP_LIMIT.read_text().strip()
    except OSError:
        return math.inf
    return float(text) if text.isdigit() else math.inf


def available_memory() -> float:
    """Bytes of memory a new allocation can have without swapping: the system's available
    memory (psutil's), at most the container's limit."""
    import psutil

    return min(float(psutil.virtual_memory().available), _container_limit())


def free_disk(path: str | Path) -> float:
    """Free bytes on the file system that ``path`` (or, while it does not exist yet, its
    nearest existing parent) is on."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return float(shutil.disk_usage(p).free)


def check_memory(need: float, what: str, fix: str, each: tuple[float, str] | None = None) -> None:
    """Refuse ``what`` (the setting and its size, e.g. ``--resamples 1,000,000,000``) when it
    needs more memory than the machine has available; ``fix`` says what to change, and
    ``each`` (bytes per unit, the unit's name) how many units would fit."""
    have = available_memory()
    if need > have:
        fit = f" (room for about {int(have // each[0]):,} {each[1]})" if each else ""
        raise DataError(
            f"{what} needs about {size(need)} of memory; this machine has {size(have)} "
            f"available{fit}: {fix}"
        )


def check_disk(need: float, where: str | Path, what: str, fix: str) -> None:
    """Refuse ``what`` when the files it writes under ``where`` need more than is free there."""
    have = free_disk(where)
    if need > have:
        raise DataError(
            f"{what} writes about {size(need)} to {where}; {size(have)} is free there: {fix}"
        )
