"""Typed configuration of a run: YAML in, dotted overrides, validation, resolved YAML out.

Every field has the default of the offline tiny run, so ``factdyn train`` with no file runs
the demo experiment (the command fills the cached world and base model); ``factdyn train
--print-config`` shows them (``configs/tiny.yaml``).

Types are strict (a YAML ``true`` is no count, a quoted ``"0.1"`` no rate), so a typo fails
with one line instead of running something else; counts and rates are bounded where a wrong
sign would silently train a different experiment (a negative learning rate ascends the loss).
YAML is read with floats in exponent notation (``1e-3``) as numbers, as a user means them.
"""

from __future__ import annotations

import difflib
import json
import re
import textwrap
import types
from pathlib import Path
from typing import Annotated, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from factdyn.errors import DataError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)


def _tuple(value: object) -> object:
    """YAML has no tuples: a list is one."""
    return tuple(value) if isinstance(value, list) else value


Beta = Annotated[float, Field(ge=0, lt=1)]
Fraction = Annotated[float, Field(gt=0, lt=1)]


class ModelShape(_Section):
    """A model's architecture, as its ``config.json`` states it: enough to build the model on
    torch's meta device, so ``--dry-run`` counts its parameters without a download."""

    family: Literal["llama", "olmo", "gpt_neox"] = Field(
        ..., description="transformers model type: llama, olmo (OLMo-1), gpt_neox (Pythia)"
    )
    layers: int = Field(..., ge=1, description="decoder layers")
    hidden_size: int = Field(..., ge=1, description="model width")
    intermediate_size: int = Field(..., ge=1, description="MLP width")
    heads: int = Field(..., ge=1, description="attention heads")
    kv_heads: int | None = Field(None, ge=1, description="key/value heads; null = heads")
    vocab_size: int = Field(..., ge=1, description="vocabulary size (embedding rows)")
    tie_embeddings: bool = Field(..., description="the output layer shares the input embeddings")

    @model_validator(mode="after")
    def _check(self) -> ModelShape:
        if self.hidden_size % self.heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of heads ({self.heads})"
            )
        kv = self.kv_heads or self.heads
        if self.heads % kv:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({kv})")
        if self.family == "gpt_neox" and kv != self.heads:
            raise ValueError("gpt_neox has no grouped-query attention: kv_heads must be null")
        return self


class ModelConfig(_Section):
    name: str | None = Field(
        None,
        description="the model to continue: a local directory or a Hugging Face hub id; "
        "null = factdyn's cached tiny base (`factdyn train` fills it in and says so)",
    )
    revision: str | None = Field(
        None,
        description="hub revision of model.name (branch, tag or commit), e.g. an intermediate "
        "checkpoint such as step113000-tokens500B; null = the default branch",
    )
    base_step: int | None = Field(
        None,
        ge=0,
        description="pretraining step of the checkpoint (meta.json; where the lr schedule "
        "resumes); null = the step in its state.json (a factdyn base), else unknown",
    )
    dtype: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="fp32, or bf16 for mixed precision (bf16 matrix products; weights and "
        "AdamW state stay fp32)",
    )
    device: str = Field(
        "auto",
        description="auto (a GPU when there is one, else the CPU), cpu, cuda or cuda:N; under "
        "torchrun each process takes its own GPU",
    )
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass: less memory, more time"
    )
    compile: bool = Field(
        False, description="torch.compile the model (faster steps on a GPU after a slow first)"
    )
    fsdp: bool = Field(
        False,
        description="with torchrun: shard weights, gradients and AdamW state over the processes "
        "(FSDP2) instead of copying them to each (DDP)",
    )
    shape: ModelShape | None = Field(
        None,
        description="the architecture, so that `--dry-run` needs no download (the presets carry "
        "it); it does not change training. null = read the model's config.json",
    )


class OptimConfig(_Section):
    lr: float | None = Field(
        None,
        gt=0,
        description="peak learning rate; null = the checkpoint's last one (a factdyn base records "
        "it; other models need it set)",
    )
    schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant",
        description="learning-rate schedule: constant, or linear/cosine decay to "
        "min_lr_ratio × lr at schedule_total",
    )
    warmup_steps: int = Field(0, ge=0, description="steps of linear warmup from 0 to lr")
    schedule_start: int | None = Field(
        None,
        ge=0,
        description="schedule position at step 0, to continue a schedule in its middle; null = "
        "model.base_step (0 when unknown)",
    )
    schedule_total: int | None = Field(
        None, ge=1, description="length of the whole schedule; null = start + train.steps"
    )
    min_lr_ratio: float = Field(
        0.0, ge=0, le=1, description="the decaying schedules end at this fraction of lr"
    )
    betas: Annotated[tuple[Beta, Beta], BeforeValidator(_tuple)] = Field(
        (0.9, 0.95), description="AdamW's β1 and β2"
    )
    eps: float = Field(1e-8, gt=0, description="AdamW's ε")
    weight_decay: float = Field(0.0, ge=0, description="AdamW's decoupled weight decay")
    decay_exclude: list[Literal["norm", "bias", "embedding"]] = Field(
        [],
        description="parameter kinds AdamW does not decay, as in the base model's own recipe: "
        "norm (norm layers' weights), bias (every .bias), embedding (input embeddings)",
    )
    grad_clip: float | None = Field(
        1.0, gt=0, description="clip the gradient's global norm to this; null = no clipping"
    )
    load_state: bool = Field(
        True,
        description="restore AdamW's moments when the checkpoint has them (optimizer.pt); "
        "false = fresh moments",
    )


class DataConfig(_Section):
    source: Literal["world", "text", "hf", "olmo"] = Field(
        "world",
        description="the background text: world (from `factdyn generate`), text (.txt/.jsonl "
        "files or a folder of them), hf (a hub dataset id or a save_to_disk folder), olmo "
        "(OLMo's tokenized Dolma shards)",
    )
    path: str | None = Field(
        None,
        description="the world folder, text file or folder, dataset, or OLMo index; required "
        "but for olmo (`factdyn train` fills in factdyn's cached world)",
    )
    files: list[str] | str | None = Field(
        None, description="olmo: the token shards in order, or a .txt file listing them"
    )
    dtype: Literal["uint16", "uint32"] = Field(
        "uint16", description="olmo: integer type of the shards' token ids"
    )
    hf_split: str = Field("train", description="hf: the dataset split to read")
    text_field: str = Field(
        "text", description="text (.jsonl) and hf: the field holding each document's text"
    )
    seq_len: int = Field(
        256, ge=2, description="tokens per training sequence; every injected text must fit"
    )
    start: int | None = Field(
        None,
        ge=0,
        description="first background sequence the run reads; null = where the base's "
        "pretraining stopped (0 for a model that does not record it)",
    )
    seed: int = Field(
        0,
        description="order of the background sequences (hf and olmo: 0 = the dataset's own); "
        "another seed is a replicate with other training noise",
    )


class ScenarioConfig(_Section):
    name: str = Field(..., description="the scenario's name in the logs (not 'control')")
    variant: Literal["paraphrase", "duplicate"] = Field(
        "duplicate",
        description="paraphrase: injection i is the item's paraphrase i (the first its "
        "train_context); duplicate: its train_context every time",
    )
    count: int = Field(..., ge=1, description="injections of each item")
    interval: int | None = Field(
        None, ge=1, description="steps between an item's injections; null = injection.interval"
    )
    first_step: int | None = Field(
        None,
        ge=0,
        description="step of the first injection; null = injection.first_step + its place × "
        "injection.scenario_offset",
    )
    n_items: int | None = Field(None, ge=1, description="items it injects; null = an equal share")


class ScheduleEntry(_Section):
    step: int = Field(..., ge=0, description="the step whose batch carries the text")
    item: int = Field(..., ge=0, description="the item's index in the items file")
    variant: int = Field(0, ge=0, description="0 = train_context, i = paraphrases[i-1]")
    scenario: str = Field("custom", description="the scenario it counts for in the analysis")


class InjectionConfig(_Section):
    items: str | None = Field(
        None,
        description="the knowledge items: a .json/.jsonl file, a dataset folder or hub id; "
        "null = the world's knowledge.json",
    )
    first_step: int = Field(0, ge=0, description="step of the first injection")
    interval: int = Field(20, ge=1, description="steps between an item's injections")
    cohorts: int = Field(
        10, ge=1, description="each scenario's items in this many cohorts with staggered starts"
    )
    cohort_gap: int | None = Field(
        None, ge=0, description="steps between cohorts' starts; null = interval // cohorts"
    )
    scenario_offset: int = Field(
        1, ge=0, description="scenario k starts k × this many steps later (unless first_step)"
    )
    scenarios: list[ScenarioConfig] = Field(
        [
            ScenarioConfig(name="paraphrase", variant="paraphrase", count=5),
            ScenarioConfig(name="duplicate", variant="duplicate", count=5),
            ScenarioConfig(name="once", variant="duplicate", count=1),
        ],
        description="the injected items are split among these, in order (controls last)",
    )
    n_controls: int = Field(30, ge=0, description="items never injected, to measure drift")
    max_items: int | None = Field(None, ge=1, description="use only the first N items")
    schedule: list[ScheduleEntry] | None = Field(
        None, description="explicit injections, replacing scenarios; null = from scenarios"
    )
    placement: Literal["prepend", "replace"] = Field(
        "prepend",
        description="prepend: the text goes in front of a background sequence, which fills the "
        "rest of its row; replace: the row holds only injected text",
    )
    allow_truncation: bool = Field(
        False,
        description="cut an injected text that does not fit data.seq_len instead of refusing "
        "the config (a cut text may lose its fact)",
    )


class EvalConfig(_Section):
    schedule: Literal["every", "sparse"] = Field(
        "every",
        description="every: score every probe before the first update and after each; sparse: "
        "each item around its own injections (log_points, per_item)",
    )
    window: int = Field(
        10, ge=1, description="t_w: steps after each injection in which acquisition is measured"
    )
    log_points: int = Field(30, ge=1, description="sparse: log-spaced steps after the last window")
    per_item: bool = Field(
        True,
        description="sparse: score each item only at its own windows and tail (controls at "
        "every logged step); false = every item at every logged step",
    )
    batch_tokens: int = Field(
        1024,
        ge=64,
        description="tokens in one scoring forward pass: 1024 suits a CPU; on a GPU larger is "
        "faster while memory lasts (the GPU presets set 65536)",
    )


class TrainConfig(_Section):
    steps: int = Field(250, ge=1, description="optimizer updates of the run")
    batch_size: int = Field(
        4, ge=1, description="global batch in sequences (all processes together)"
    )
    micro_batch_size: int | None = Field(
        None,
        ge=1,
        description="sequences per forward/backward pass on each process (gradient "
        "accumulation); null = the process's whole share of the batch",
    )
    seed: int = Field(
        0,
        description="must be 0: training is deterministic given its data (for a replicate set "
        "data.seed); kept so that older configs load",
    )
    checkpoint_every: int = Field(
        50, ge=1, description="save a checkpoint every this many steps and at the end"
    )
    keep_checkpoints: int = Field(2, ge=1, description="newest checkpoints kept on disk")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; null = torch default")
    trackers: list[Literal["tensorboard", "wandb"]] = Field(
        default_factory=list,
        description="live logging: tensorboard (RUN_DIR/tb), wandb (RUN_DIR/wandb); none = []",
    )

    @field_validator("seed")
    @classmethod
    def _seed_has_no_effect(cls, seed: int) -> int:
        # training is deterministic given its data: a seed here would make runs that are
        # bit-identical look like replicates (and pool as such)
        if seed != 0:
            raise ValueError(
                "has no effect: training is deterministic given its data; for a replicate "
                "with other training noise set data.seed (another order of the background text)"
            )
        return seed


# Fields that change what a run reports to, not what it measures: a resume may change them
# and runs that differ only in them pool.
SIDE_FIELDS = (("train", "trackers"),)


class RunConfig(_Section):
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    data: DataConfig = DataConfig()
    injection: InjectionConfig = InjectionConfig()
    eval: EvalConfig = EvalConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        mb = self.train.micro_batch_size
        if mb is not None and self.train.batch_size % mb:
            raise ValueError(
                f"train.batch_size ({self.train.batch_size}) must be a multiple of "
                f"train.micro_batch_size ({mb})"
            )
        names = [s.name for s in self.injection.scenarios]
        if len(set(names)) != len(names) or "control" in names:
            raise ValueError("injection.scenarios: names must be unique and not 'control'")
        return self


class _Loader(yaml.SafeLoader):
    """YAML 1.1 as PyYAML reads it, but ``1e-3`` is a float (YAML 1.2 and every user agree)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def read_yaml(text: str, where: str) -> object:
    """Parse YAML text; any syntax error or absurd nesting is one line naming ``where``."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        raise DataError(f"{where}: YAML error: {' '.join(str(e).split())}") from None
    except RecursionError:
        raise DataError(f"{where}: nested too deeply to be a configuration") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise DataError(f"{where}: {' '.join(str(e).split())}") from None


def _parse_value(text: str, where: str) -> object:
    """A command-line value, read as YAML so numbers, booleans, null and lists work."""
    return read_yaml(text, where) if text != "" else ""


def apply_overrides(raw: dict, overrides: list[str], source: str = "--set") -> dict:
    """Apply ``section.key=value`` overrides to a raw config dict (copied)."""
    out = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for ov in overrides:
        key, eq, value = ov.partition("=")
        parts = key.strip().split(".")
        if not eq or not all(p.strip() for p in parts):
            raise DataError(
                f"{source} {ov!r}: expected section.key=value, with '=' and no space "
                "(e.g. --set optim.lr=1e-3)"
            )
        node = out
        for p in parts[:-1]:
            if not isinstance(node, dict):
                break
            node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise DataError(f"{source} {ov!r}: '{'.'.join(parts[:-1])}' is not a section")
        node[parts[-1]] = _parse_value(value, f"{source} {ov!r}")
    return out


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The pydantic model a field holds (itself, in a list, or or-null), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


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


def _set_source(loc: tuple, overrides: list[str]) -> str | None:
    """``--set KEY=VALUE`` of the override that put ``loc`` there (the last one), if any."""
    path = [str(p) for p in loc]
    for ov in reversed(overrides):
        parts = [p.strip() for p in ov.partition("=")[0].split(".")]
        n = min(len(parts), len(path))
        if parts[:n] == path[:n]:
            return f"--set {ov}"
    return None


# which model a ValidationError's title names, for a "did you mean" when none is given
_MODELS: dict[str, type[BaseModel]] = {}


def _one_line(
    e: ValidationError,
    source: str,
    model: type[BaseModel] | None = None,
    overrides: list[str] = (),
) -> DataError:
    """The first validation error as ``source, field 'a.b': message``; an unknown key as
    ``source, field 'a.b': unknown key; did you mean 'a.c'?``. ``source`` is the file, or the
    ``--set`` among ``overrides`` that gave the field."""
    errors = e.errors()
    err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    source = _set_source(err["loc"], list(overrides)) or source
    if err["type"] == "extra_forbidden" and err["loc"]:
        text = _unknown_key(err["loc"], model or _MODELS.get(e.title), source)
    else:
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        text = f"{source}, field '{loc}': {err['msg']}"
    return DataError(" ".join(text.splitlines()))


def read_mapping(path: str | Path, packaged: Path, kind: str) -> dict:
    """A YAML mapping from a file, or from ``packaged/<name>.yaml`` when ``path`` is no file
    (a preset, a packaged grid); every failure one line naming it."""
    path = Path(path)
    if not path.is_file():
        found = packaged / f"{path.name.removesuffix('.yaml')}.yaml"
        if not found.is_file():
            names = ", ".join(sorted(p.stem for p in packaged.glob("*.yaml")))
            raise DataError(f"{path}: no such {kind} file or packaged {kind} ({names})")
        path = found
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    raw = read_yaml(text, str(path)) or {}
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a mapping of sections")
    return raw


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or the defaults), apply overrides, validate with one-line errors."""
    source = str(path) if path else "defaults"
    raw = read_mapping(path, Path(__file__).parent / "configs", "config") if path else {}
    raw = apply_overrides(raw, overrides or [])
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as e:
        raise _one_line(e, source, RunConfig, overrides or []) from None


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


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


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


def _field_help(field, indent: str, name: str = "") -> list[str]:
    """The comment lines of one field: description [type; default]."""
    value = None if field.is_required() else field.get_default(call_default_factory=True)
    default = "required" if field.is_required() else f"default {_short(value)}"
    kind = _type_text(field.annotation, _bounds_text(field.metadata))
    text = f"{name}{field.description or ''} [{kind}; {default}]"
    width = max(100 - len(indent) - 2, 40)
    lines = textwrap.wrap(text.strip(), width, break_long_words=False, break_on_hyphens=False)
    return [f"{indent}# {lines[0]}", *(f"{indent}#   {x}" for x in lines[1:])]


def _explain(obj: BaseModel, indent: str) -> list[str]:
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


class BaseConfig(_Section):
    """The tiny Llama that ``factdyn pretrain`` trains from scratch on a generated world."""

    hidden_size: int = Field(128, ge=1, description="model width")
    layers: int = Field(4, ge=1, description="decoder layers")
    heads: int = Field(4, ge=1, description="attention heads")
    intermediate_size: int = Field(512, ge=1, description="MLP width")
    seq_len: int = Field(256, ge=2, description="tokens per training sequence")
    batch_size: int = Field(16, ge=1, description="sequences per update")
    steps: int = Field(450, ge=1, description="updates of the warmup + decay schedule")
    lr: float = Field(4e-3, gt=0, description="peak learning rate")
    warmup_steps: int = Field(50, ge=0, description="steps of linear warmup from 0 to lr")
    schedule: Literal["constant", "linear", "cosine"] = Field(
        "cosine", description="learning-rate decay after the warmup"
    )
    min_lr_ratio: float = Field(
        0.25,
        ge=0,
        le=1,
        description="the schedule ends at this fraction of lr, the rate a run continuing the "
        "base holds",
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW's decoupled weight decay")
    grad_clip: float = Field(1.0, gt=0, description="clip the gradient's global norm to this")
    seed: int = Field(0, description="initial weights and the order of the corpus")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; null = torch default")
    settle_steps: int = Field(
        0,
        ge=0,
        description="updates after the schedule at its final lr with settle_batch_size "
        "sequences, so that a run continuing at that smaller batch starts without a batch "
        "switch; 0 = none",
    )
    settle_batch_size: int = Field(
        4, ge=1, description="sequences per settling update: the continuation's train.batch_size"
    )
    snapshots: Annotated[tuple[Fraction, ...], BeforeValidator(_tuple)] = Field(
        (0.25, 0.5),
        description="fractions of steps at which pretraining also saves a checkpoint "
        "(stages/step-NNNNNN): the earlier pretraining stages `factdyn reproduce` continues",
    )

    @model_validator(mode="after")
    def _check(self) -> BaseConfig:
        if self.hidden_size % self.heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of heads ({self.heads})"
            )
        return self


def load_base_config(overrides: list[str] | None = None) -> BaseConfig:
    raw = apply_overrides({}, overrides or [])
    try:
        return BaseConfig.model_validate(raw)
    except ValidationError as e:
        raise _one_line(e, "--set", BaseConfig, overrides or []) from None


_MODELS.update({m.__name__: m for m in (RunConfig, BaseConfig)})
