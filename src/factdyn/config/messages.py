"""A pydantic validation error as the one line a user sees: the file or the ``--set`` that
gave the field, the field's dotted name, and for an unknown key the closest known one."""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ValidationError

from factdyn.config.base import BaseConfig
from factdyn.config.field_text import _model_in
from factdyn.config.sections import RunConfig
from factdyn.errors import DataError


def _model_at(model: type[BaseModel] | None, loc: tuple) -> type[BaseModel] | None:
    """The model that holds the field at ``loc`` (list indexes skipped)."""
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field is not None else None
    return model


def _unknown_key(loc: tuple, model: type[BaseModel] | None, source: str) -> str:
    """``source, field 'a.b': unknown key; did you mean 'a.c'?`` (or the keys there are)."""
    name = ".".join(str(p) for p in loc)
    where = _model_at(model, loc[:-1])
    if where is None:
        return f"{source}, field '{name}': unknown key"
    fields = list(where.model_fields)
    kind = "section" if all(_model_in(f.annotation) for f in where.model_fields.values()) else "key"
    prefix = "".join(f"{p}." for p in loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), fields, n=1, cutoff=0.6)
    if close:
        return f"{source}, field '{name}': unknown {kind}; did you mean '{prefix}{close[0]}'?"
    there = f"{prefix.rstrip('.')} has" if prefix else "known"
    return f"{source}, field '{name}': unknown {kind} ({there}: {', '.join(fields)})"


def _set_source(loc: tuple, overrides: list[str], labels: list[str] | None = None) -> str | None:
    """``--set KEY=VALUE`` of the override that put ``loc`` there (the last one), if any;
    ``labels``: where each override came from, in place of ``--set`` (a grid's point)."""
    path = [str(p) for p in loc]
    for k in reversed(range(len(overrides))):
        ov = overrides[k]
        parts = [p.strip() for p in ov.partition("=")[0].split(".")]
        n = min(len(parts), len(path))
        if parts[:n] == path[:n]:
            return f"{labels[k] if labels else '--set'} {ov}"
    return None


# which model a ValidationError's title names, for a "did you mean" when none is given
_MODELS: dict[str, type[BaseModel]] = {m.__name__: m for m in (RunConfig, BaseConfig)}


def _one_line(
    e: ValidationError,
    source: str,
    model: type[BaseModel] | None = None,
    overrides: list[str] = (),
    labels: list[str] | None = None,
) -> DataError:
    """The first validation error as ``source, field 'a.b': message``; an unknown key as
    ``source, field 'a.b': unknown key; did you mean 'a.c'?``. ``source`` is the file, or the
    ``--set`` among ``overrides`` that gave the field (``labels``: each one's own source)."""
    errors = e.errors()
    err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    source = _set_source(err["loc"], list(overrides), labels) or source
    if err["type"] == "extra_forbidden" and err["loc"]:
        text = _unknown_key(err["loc"], model or _MODELS.get(e.title), source)
    else:
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        text = f"{source}, field '{loc}': {err['msg']}"
    return DataError(" ".join(text.splitlines()))
