"""Grids of runs (``factdyn reproduce``): grid files, their sweeps, and the launchers.

Only the packaged grids' folder is named here, with no heavy import, so that the command
line's help can list the shipped grids without loading the sweep's machinery.
"""

from __future__ import annotations

from pathlib import Path

GRIDS = Path(__file__).resolve().parent.parent / "grids"


def packaged_grids() -> list[str]:
    """The names of the grids shipped in ``factdyn/grids`` (``factdyn reproduce NAME``)."""
    return sorted(p.stem for p in GRIDS.glob("*.yaml"))
