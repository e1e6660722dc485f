"""What a run records of its configuration (the canonical YAML, inputs as absolute paths) and
how two recorded configurations differ (a resume's check, the pooling of replicates)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from factdyn.config.sections import RunConfig


def dump_config(cfg: RunConfig) -> str:
    """``cfg`` as the YAML a run records (config.yaml): every field, in the models' order."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def with_absolute_paths(cfg: RunConfig) -> RunConfig:
    """``cfg`` with every input that names an existing local path (data.path, model.name,
    injection.items) made absolute, so that the run's recorded config finds its inputs from any
    directory (a resume, a report); hub and dataset ids, which name no local path, stay as they
    are."""
    cfg = cfg.model_copy(deep=True)
    for section, key in (("data", "path"), ("model", "name"), ("injection", "items")):
        part = getattr(cfg, section)
        value = getattr(part, key)
        if value and Path(value).exists():
            setattr(part, key, str(Path(value).resolve()))
    return cfg


def changed_fields(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields whose values differ (a list, e.g. scenarios, as a whole)."""
    out = []
    for key in [*old, *(k for k in new if k not in old)]:
        a, b, name = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_fields(a, b, f"{name}.")
        elif a != b:
            out.append(name)
    return out


def _value_text(cfg: dict, field: str) -> str:
    for part in field.split("."):
        cfg = cfg.get(part) if isinstance(cfg, dict) else None
    text = json.dumps(cfg)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_changes(old: dict, new: dict, fields: list[str], limit: int = 4) -> str:
    """``field old -> new`` for the first ``limit`` of ``fields``, for a one-line error."""
    what = ", ".join(f"{f} {_value_text(old, f)} -> {_value_text(new, f)}" for f in fields[:limit])
    return what + (f" and {len(fields) - limit} more" if len(fields) > limit else "")
