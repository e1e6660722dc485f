"""A field's type, bounds and default in words (``integer ≥ 1 or null``, ``default 0.9``):
what ``--explain`` and docs/config.md print beside each description."""

from __future__ import annotations

import types
from typing import Annotated, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The pydantic model a field holds (itself, in a list, or or-null), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


_LOWER = ((annotated_types.Ge, "ge", "[", "≥"), (annotated_types.Gt, "gt", "(", ">"))
_UPPER = ((annotated_types.Le, "le", "]", "≤"), (annotated_types.Lt, "lt", ")", "<"))
_NAMES = {int: "integer", float: "number", str: "text", bool: "true/false"}


def _bounds(metadata: list) -> list:
    """The bound constraints among a field's metadata (a ``Field()`` inside Annotated too)."""
    kinds = tuple(k for k, *_ in (*_LOWER, *_UPPER))
    out = []
    for m in metadata:
        if isinstance(m, kinds):
            out.append(m)
        elif not isinstance(m, type) and isinstance(getattr(m, "metadata", None), list):
            out += _bounds(m.metadata)
    return out


def _bounds_text(metadata: list) -> str:
    """`` ≥ 1``, `` in [0, 1)``: a field's bounds in words."""
    found = _bounds(metadata)

    def one(table: tuple) -> tuple | None:
        return next(
            (
                (getattr(m, attr), bracket, sign)
                for m in found
                for k, attr, bracket, sign in table
                if isinstance(m, k)
            ),
            None,
        )

    lo, hi = one(_LOWER), one(_UPPER)
    if lo and hi:
        return f" in {lo[1]}{lo[0]:g}, {hi[0]:g}{hi[1]}"
    if lo or hi:
        value, _, sign = lo or hi
        return f" {sign} {value:g}"
    return ""


def _type_text(annotation: object, bounds: str = "") -> str:
    """A field's type in words: ``integer ≥ 1 or null``, ``fp32 | bf16``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type_text(args[0], bounds + _bounds_text(list(args[1:])))
    if origin in (Union, types.UnionType):
        text = ", ".join(_type_text(a, bounds) for a in args if a is not type(None))
        return text + " or null" if type(None) in args else text
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin is list or (origin is tuple and args[-1:] == (Ellipsis,)):
        return f"list of {_type_text(args[0])}"
    if origin is tuple:
        texts = [_type_text(a) for a in args]
        return f"pair of {texts[0]}" if texts == texts[:1] * 2 else "[" + ", ".join(texts) + "]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping (fields below)"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation))) + bounds


def _short(value: object) -> str:
    """A value as YAML writes it inline."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_defaults=True)
    elif isinstance(value, list | tuple):
        value = [
            v.model_dump(mode="json", exclude_defaults=True) if isinstance(v, BaseModel) else v
            for v in value
        ]
    text = yaml.safe_dump(
        value, default_flow_style=True, width=10**6, allow_unicode=True, sort_keys=False
    )
    return text.removesuffix("\n...\n").strip()


def type_text(field: FieldInfo) -> str:
    """``field``'s type with its bounds in words."""
    return _type_text(field.annotation, _bounds_text(field.metadata))


def default_value(field: FieldInfo) -> str | None:
    """``field``'s default as YAML writes it inline; None when the field is required."""
    if field.is_required():
        return None
    return _short(field.get_default(call_default_factory=True))


def default_text(field: FieldInfo) -> str:
    """``required``, or ``default`` and the value as YAML writes it inline."""
    value = default_value(field)
    return "required" if value is None else f"default {value}"
