"""The ``factdyn`` Typer application and what its command modules share.

Besides the commands' shared options this holds what every command gets: the global options
(``--version``, ``-q``, ``-v``), "did you mean" for a mistyped command, ``--set KEY VALUE``
read as ``--set KEY=VALUE``, and one line on Ctrl-C.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
from collections.abc import Callable
from typing import Annotated

import typer
from typer.core import TyperGroup

from factdyn import progress
from factdyn.errors import DataError

try:  # the click that typer runs on: its own copy since typer 0.2x, else click itself
    from typer._click import Command, Context, Parameter
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover (older typer)
    from click import Command, Context, Parameter
    from click.exceptions import UsageError

SET_FLAGS = ("--set", "-s")
_KEY = re.compile(r"[A-Za-z_][\w-]*(\.[\w-]+)*")  # section.key (or a base's flat key)
_OPTION = re.compile(r"-[A-Za-z-]")  # -q, --out; not -1 or -.5, which are values


def join_set_values(args: list[str]) -> list[str]:
    """``--set KEY VALUE`` (a space where the ``=`` goes) as ``--set KEY=VALUE``, so that the
    value is not taken for the command's CONFIG argument; ``--set KEY=VALUE`` is unchanged."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return out + args[i:]
        flag, eq, key = arg.partition("=")
        if flag in SET_FLAGS and eq and i + 1 < len(args):  # --set=KEY VALUE
            nxt = args[i + 1]
            if _KEY.fullmatch(key) and not _OPTION.match(nxt):
                out += [flag, f"{key}={nxt}"]
                i += 2
                continue
        if arg in SET_FLAGS and i + 2 < len(args):  # --set KEY VALUE
            key, nxt = args[i + 1], args[i + 2]
            if "=" not in key and _KEY.fullmatch(key) and not _OPTION.match(nxt):
                out += [arg, f"{key}={nxt}"]
                i += 3
                continue
        out.append(arg)
        i += 1
    return out


def err_main(msg: str) -> None:
    """One line on stderr, once in a multi-process run."""
    if os.environ.get("RANK", "0") == "0":
        print(msg, file=sys.stderr, flush=True)


def _flag(param: Parameter) -> str:
    """How a user spells ``param``: its long option, else its name."""
    longs = [o for o in param.opts if o.startswith("--")]
    return longs[0] if longs else str(param.name).upper()


def _finite(callback: Callable | None) -> Callable:
    """``callback`` (click's, or none) after a check that the value holds no NaN or infinity."""

    def check(ctx: Context, param: Parameter, value: object) -> object:
        for v in value if isinstance(value, list | tuple) else (value,):
            if isinstance(v, float) and not math.isfinite(v):
                past = " (past the largest float, about 1.8e308)" if math.isinf(v) else ""
                raise DataError(
                    f"{ctx.info_name}: {_flag(param)}: must be a finite number, not {v}{past}"
                )
        return value if callback is None else callback(ctx, param, value)

    return check


def refuse_non_finite(command: Command) -> None:
    """Refuse NaN and ±infinity (``nan``, ``inf``, ``1e400``) for every number a user gives
    ``command``: Python reads them as floats, and no option of factdyn means them, so the
    refusal lives here once, for every float option of every command, present and future.
    A group's commands get the check when they are resolved; marking the parameter keeps it
    from being added twice."""
    for param in command.params:
        if not getattr(param, "_finite_checked", False):
            param.callback = _finite(param.callback)
            param._finite_checked = True  # type: ignore[attr-defined]


class Group(TyperGroup):
    """factdyn's command groups: "did you mean" for an unknown command (whatever click's
    version), ``--set KEY VALUE`` understood, NaN and infinity refused for every option
    (:func:`refuse_non_finite`), one line on Ctrl-C."""

    def main(self, args=None, *rest, **kwargs):  # noqa: ANN001, ANN002, ANN003 (click's)
        args = sys.argv[1:] if args is None else list(args)
        return super().main(join_set_values(args), *rest, **kwargs)

    def resolve_command(self, ctx, args: list[str]):  # noqa: ANN001, ANN201 (click's)
        try:
            name, command, rest = super().resolve_command(ctx, args)
        except UsageError as e:
            name = str(args[0]) if args else ""
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            if close and "did you mean" not in e.message.lower():
                e.message = f"No such command {name!r}. Did you mean {close[0]!r}?"
            raise
        if command is not None:
            refuse_non_finite(command)
        return name, command, rest

    def invoke(self, ctx):  # noqa: ANN001, ANN201 (click's)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            err_main("factdyn: interrupted")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=Group,
    help="Measure how language models acquire and forget factual knowledge during pretraining.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(cls=Group, help="Inspect and validate knowledge data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def version() -> str:
    """The installed factdyn's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("factdyn")
    except PackageNotFoundError:  # run from a source tree that is not installed
        from factdyn.version import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"factdyn {version()}")
        raise typer.Exit()


@app.callback()
def _global_options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print factdyn's version and exit.",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Print only errors and where the results were written."),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Print debug lines too, and other libraries' progress bars and logs.",
        ),
    ] = False,
) -> None:
    if quiet and verbose:
        raise UsageError("-q and -v: give one of them, not both")
    # without either, a command started by another factdyn command keeps its verbosity
    progress.configure(progress.QUIET if quiet else progress.VERBOSE if verbose else None)


OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Write into an existing --out: replaces factdyn's own files there, nothing else.",
    ),
]

PrintConfigOpt = Annotated[
    bool, typer.Option("--print-config", help="Print the resolved settings and stop.")
]
ExplainOpt = Annotated[
    bool,
    typer.Option(
        "--explain",
        help="Print the settings with each field's description, type and default as a comment "
        "above it (the output still loads as a config file).",
    ),
]

SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override a config field: section.key=value (repeatable; "
        "`factdyn train --print-config --explain` lists the fields).",
    ),
]


def echo_main(msg: str) -> None:
    """Print once in a multi-process run: a command's result (kept with -q)."""
    if os.environ.get("RANK", "0") == "0":
        typer.echo(msg)


def info(msg: str) -> None:
    """``factdyn: MSG`` on stderr, once in a multi-process run; not with -q."""
    if os.environ.get("RANK", "0") == "0" and not progress.quiet():
        err_main(f"factdyn: {msg}")
