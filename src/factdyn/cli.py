"""The ``factdyn`` command line: thin wrappers; the work lives in the pipeline's modules.

Each subcommand imports what it needs inside its body, so ``factdyn --help`` stays fast and
the analysis commands never import torch.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from factdyn.data.items import DataError

app = typer.Typer(
    help="Measure how language models acquire and forget factual knowledge during pretraining.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and validate knowledge data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

# ---- data / generate commands ----

# ---- score commands ----

# ---- train commands ----

# ---- analyze commands ----

# ---- report commands ----


def main() -> None:
    """Entry point: bad input ends in one line on stderr and exit code 2."""
    try:
        app()
    except DataError as e:
        print(f"factdyn: error: {e}", file=sys.stderr)
        sys.exit(2)
