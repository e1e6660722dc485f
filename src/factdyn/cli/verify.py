"""``factdyn verify``: whether a run injected what its schedule and its items say."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factdyn.cli.app import app, echo_main, info

SHOWN = 20  # differences printed; the rest are counted


@app.command()
def verify(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    items: Annotated[
        Path | None,
        typer.Option(help="The items to check against (default: the run's injection.items)."),
    ] = None,
    tokenizer: Annotated[
        Path | None,
        typer.Option(
            help="A tokenizer folder to check the placed tokens with (default: the run's "
            "newest checkpoint, else its model folder)."
        ),
    ] = None,
) -> None:
    """Check the run's record of every injection (provenance.parquet) against its schedule,
    its items and the tokenizer: one line per difference, exit 1 if any."""
    from factdyn.train.verify import verify_run

    found = verify_run(run_dir, items, tokenizer)
    for notice in found.notices:
        info(notice)
    if not found.differences:
        echo_main(
            f"verified: {found.injections} injections at {found.steps} steps match the "
            "schedule and the items"
        )
        return
    for line in found.differences[:SHOWN]:
        echo_main(line)
    if (more := len(found.differences) - SHOWN) > 0:
        echo_main(f"... and {more} more")
    n = len(found.differences)
    echo_main(f"{n} difference{'s' * (n != 1)} between {run_dir} and its schedule and items")
    raise typer.Exit(1)
