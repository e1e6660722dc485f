"""A configuration as commented YAML: each field after a comment with its description, type
and default (what ``factdyn train --print-config --explain`` prints)."""

from __future__ import annotations

import textwrap

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from factdyn.config.field_text import _model_in, default_text, type_text


def _field_help(field: FieldInfo, indent: str, name: str = "") -> list[str]:
    """The comment lines of one field: description [type; default]."""
    text = f"{name}{field.description or ''} [{type_text(field)}; {default_text(field)}]"
    width = max(100 - len(indent) - 2, 40)
    lines = textwrap.wrap(text.strip(), width, break_long_words=False, break_on_hyphens=False)
    return [f"{indent}# {lines[0]}", *(f"{indent}#   {x}" for x in lines[1:])]


def _explain(obj: BaseModel, indent: str) -> list[str]:
    """The lines of ``obj``'s fields; a section's under its name, indented."""
    lines: list[str] = []
    for name, field in type(obj).model_fields.items():
        value = getattr(obj, name)
        inner = _model_in(field.annotation)
        if isinstance(value, BaseModel) and field.description is None:  # a section
            lines += ["", f"{indent}{name}:", *_explain(value, indent + "  ")]
            continue
        lines += _field_help(field, indent)
        if inner is not None:  # a list of entries (or an optional mapping): their fields
            for sub_name, sub in inner.model_fields.items():
                lines += _field_help(sub, indent + "  ", f"{sub_name}: ")
        dumped = yaml.safe_dump(
            {name: obj.model_dump(mode="json")[name]}, sort_keys=False, allow_unicode=True
        )
        lines += [f"{indent}{line}" for line in dumped.splitlines()]
    return lines


def explain_config(cfg: BaseModel) -> str:
    """``cfg`` as YAML that loads back to it, each field after a comment with its
    description, type and default (what ``factdyn train --print-config --explain`` prints)."""
    head = [
        "# factdyn configuration: every field with its description, type and default, then its",
        "# value here. Change one with --set section.key=value, or save this as a file.",
    ]
    return "\n".join([*head, *_explain(cfg, "")]).replace("\n\n\n", "\n\n") + "\n"
