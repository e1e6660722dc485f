"""The ``factdyn`` command line: thin wrappers; the work lives in the pipeline's modules.

Each subcommand imports what it needs inside its body, so ``factdyn --help`` stays fast and
the analysis commands never import torch. The commands live in :mod:`.data`,
:mod:`.training` and :mod:`.results`; importing them registers them on :data:`app`.
"""

from __future__ import annotations

import sys

from factdyn.cli.app import app
from factdyn.errors import DataError

# importing the command modules registers their commands, in the pipeline's order
from factdyn.cli import data, training, results, simulate, sweep, verify  # noqa: E402, F401, I001  # isort: skip

__all__ = ["app", "main"]


def _os_error_line(e: OSError) -> str:
    """``<path>: <reason>``: what a user needs to fix an unwritable, full or missing path."""
    reason = e.strerror or str(e) or type(e).__name__
    return f"{e.filename}: {reason}" if e.filename is not None else reason


def main() -> None:
    """Entry point: bad input, and a path the system refuses (permissions, a full disk, a
    file where a folder should be, a missing device), end in one line on stderr and exit
    code 2; every write is atomic, so nothing half-written is left."""
    try:
        app()
    except DataError as e:
        message = str(e)
    except OSError as e:
        message = _os_error_line(e)
    else:
        return
    print(f"factdyn: error: {' '.join(message.splitlines())}", file=sys.stderr)
    sys.exit(2)
