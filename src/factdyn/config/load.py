"""The ways to a validated configuration: a file or preset with ``--set`` strings (what a user
types), and typed updates of a validated one (what the program itself changes)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from factdyn.config.base import BaseConfig
from factdyn.config.messages import _one_line
from factdyn.config.reading import apply_overrides, read_mapping
from factdyn.config.sections import RunConfig

# the packaged presets: `factdyn train olmo-1b` reads configs/olmo-1b.yaml
PRESETS = Path(__file__).parents[1] / "configs"

Config = TypeVar("Config", RunConfig, BaseConfig)


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    sources: list[str] | None = None,
) -> RunConfig:
    """Read a YAML config (or the defaults), apply overrides, validate with one-line errors.
    ``sources``: where each override comes from, named by its errors (default ``--set``; a
    grid names its file and point)."""
    source = str(path) if path else "defaults"
    overrides = list(overrides or [])
    labels = list(sources) if sources is not None else ["--set"] * len(overrides)
    raw = read_mapping(path, PRESETS, "config") if path else {}
    for override, label in zip(overrides, labels, strict=True):
        raw = apply_overrides(raw, [override], label)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as e:
        raise _one_line(e, source, RunConfig, overrides, labels) from None


def load_base_config(overrides: list[str] | None = None) -> BaseConfig:
    """The base model's settings: the defaults with ``--set`` overrides, validated."""
    raw = apply_overrides({}, overrides or [])
    try:
        return BaseConfig.model_validate(raw)
    except ValidationError as e:
        raise _one_line(e, "--set", BaseConfig, overrides or []) from None


def updated(cfg: Config, source: str = "an update", /, **changes: object) -> Config:
    """``cfg`` with ``changes`` made and the whole validated again, as a file would be.

    A section given as a mapping changes only the fields it names
    (``updated(cfg, data={"path": world})``); any other keyword replaces the field. Values are
    typed (a path is a ``str``, a count an ``int``), never text read again as YAML. A bad one is
    one line naming ``source`` (the option that gave it) and the field, as ``--set``'s are.
    """
    raw = cfg.model_dump(mode="json")
    for name, value in changes.items():
        old = raw.get(name)
        raw[name] = {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
    try:
        return type(cfg).model_validate(raw)
    except ValidationError as e:
        raise _one_line(e, source, type(cfg)) from None
