"""The ``factdyn`` Typer application and what its command modules share."""

from __future__ import annotations

import os
from typing import Annotated

import typer

app = typer.Typer(
    help="Measure how language models acquire and forget factual knowledge during pretraining.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and validate knowledge data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Write into an existing --out: replaces factdyn's own files there, nothing else.",
    ),
]

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config field: section.key=value (repeatable)."),
]


def echo_main(msg: str) -> None:
    """Print once in a multi-process run."""
    if os.environ.get("RANK", "0") == "0":
        typer.echo(msg)
