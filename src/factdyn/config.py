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

import json
import re
from pathlib import Path
from typing import Annotated, Literal

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
    layers: int = Field(..., ge=1)
    hidden_size: int = Field(..., ge=1)
    intermediate_size: int = Field(..., ge=1)
    heads: int = Field(..., ge=1)
    kv_heads: int | None = Field(None, ge=1, description="key/value heads; null = heads")
    vocab_size: int = Field(..., ge=1)
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
        None, description="path or hub id (required; `factdyn train` fills factdyn's cached base)"
    )
    revision: str | None = None
    base_step: int | None = Field(
        None,
        ge=0,
        description="pretraining step of the base checkpoint (meta.json, default "
        "optim.schedule_start); null = its state.json's step",
    )
    dtype: Literal["fp32", "bf16"] = "fp32"
    device: str = "auto"
    gradient_checkpointing: bool = False
    compile: bool = False
    fsdp: bool = False
    shape: ModelShape | None = Field(
        None,
        description="the architecture, so `--dry-run` and `factdyn reproduce --dry-run` need "
        "no download (the presets carry it); it does not change training. null = read the "
        "model's config.json",
    )


class OptimConfig(_Section):
    lr: float | None = Field(None, gt=0, description="peak lr; null = the checkpoint's last lr")
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    schedule_start: int | None = Field(
        None, ge=0, description="schedule position at step 0; null = checkpoint's"
    )
    schedule_total: int | None = Field(
        None, ge=1, description="schedule length; null = start + train.steps"
    )
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    betas: Annotated[tuple[Beta, Beta], BeforeValidator(_tuple)] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    decay_exclude: list[Literal["norm", "bias", "embedding"]] = Field(
        [],
        description="parameter kinds AdamW does not decay, as in the base model's own recipe: "
        "norm (norm layers' weights), bias (every .bias), embedding (input embeddings)",
    )
    grad_clip: float | None = Field(1.0, gt=0)
    load_state: bool = Field(True, description="restore AdamW moments when the checkpoint has them")


class DataConfig(_Section):
    source: Literal["world", "text", "hf", "olmo"] = "world"
    path: str | None = Field(
        None,
        description="world dir / text dir or file / dataset id / OLMo index (required but for "
        "olmo; `factdyn train` fills factdyn's cached world)",
    )
    files: list[str] | str | None = Field(
        None, description="olmo: token shards in order (or a .txt list)"
    )
    dtype: Literal["uint16", "uint32"] = Field(
        "uint16", description="olmo: token id type of shards"
    )
    hf_split: str = "train"
    text_field: str = "text"
    seq_len: int = Field(256, ge=2)
    start: int | None = Field(
        None, ge=0, description="first sequence position; null = after the base's"
    )
    seed: int = 0


class ScenarioConfig(_Section):
    name: str
    variant: Literal["paraphrase", "duplicate"] = "duplicate"
    count: int = Field(..., ge=1)
    interval: int | None = Field(None, ge=1)
    first_step: int | None = Field(None, ge=0)
    n_items: int | None = Field(None, ge=1, description="null = an equal share of the items")


class ScheduleEntry(_Section):
    step: int = Field(..., ge=0)
    item: int = Field(..., ge=0)
    variant: int = Field(0, ge=0, description="0 = train_context, i = paraphrases[i-1]")
    scenario: str = "custom"


class InjectionConfig(_Section):
    items: str | None = Field(None, description="items file or dataset; null = the world's")
    first_step: int = Field(0, ge=0)
    interval: int = Field(20, ge=1)
    cohorts: int = Field(
        10, ge=1, description="each scenario's items in this many cohorts with staggered starts"
    )
    cohort_gap: int | None = Field(
        None, ge=0, description="steps between cohorts' starts; null = interval // cohorts"
    )
    scenario_offset: int = Field(
        1, ge=0, description="scenario k starts k × this many steps later (unless first_step)"
    )
    scenarios: list[ScenarioConfig] = [
        ScenarioConfig(name="paraphrase", variant="paraphrase", count=5),
        ScenarioConfig(name="duplicate", variant="duplicate", count=5),
        ScenarioConfig(name="once", variant="duplicate", count=1),
    ]
    n_controls: int = Field(30, ge=0, description="items never injected, to measure drift")
    max_items: int | None = Field(None, ge=1, description="use only the first N items")
    schedule: list[ScheduleEntry] | None = Field(None, description="explicit; replaces scenarios")
    placement: Literal["prepend", "replace"] = "prepend"
    allow_truncation: bool = False


class EvalConfig(_Section):
    schedule: Literal["every", "sparse"] = "every"
    window: int = Field(10, ge=1, description="t_w: steps after each injection (LAM window)")
    log_points: int = Field(30, ge=1, description="sparse: log-spaced steps after the last window")
    per_item: bool = Field(
        True,
        description="sparse: score each item only at its own windows and tail (controls always)",
    )
    batch_tokens: int = Field(
        1024,
        ge=64,
        description="token budget of one scoring forward pass: 1024 is the fastest on a CPU "
        "with the one thread per run the demo gives each seed, 1.13x 4096 "
        "(benchmarks/bench_batch_tokens.py); the GPU presets set 65536",
    )
    contexts: bool = Field(
        False,
        description="also score each item's train_context into context.npy (the paper's 'def'); "
        "no analysis reads it",
    )


class TrainConfig(_Section):
    steps: int = Field(250, ge=1)
    batch_size: int = Field(4, ge=1, description="global batch in sequences")
    micro_batch_size: int | None = Field(None, ge=1, description="per process; null = whole batch")
    seed: int = Field(0, description="kept so that earlier runs' configs load; must be 0")
    checkpoint_every: int = Field(50, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
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
            raise DataError(f"{source} {ov!r}: expected section.key=value")
        node = out
        for p in parts[:-1]:
            if not isinstance(node, dict):
                break
            node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise DataError(f"{source} {ov!r}: '{'.'.join(parts[:-1])}' is not a section")
        node[parts[-1]] = _parse_value(value, f"{source} {ov!r}")
    return out


def _one_line(e: ValidationError, source: str) -> DataError:
    """The first validation error as ``source, field 'a.b': message``."""
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "config"
    return DataError(" ".join(f"{source}, field '{loc}': {err['msg']}".splitlines()))


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
        raise _one_line(e, source) from None


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


class BaseConfig(_Section):
    """The tiny Llama that ``factdyn pretrain`` trains from scratch on a generated world."""

    hidden_size: int = Field(128, ge=1)
    layers: int = Field(4, ge=1)
    heads: int = Field(4, ge=1)
    intermediate_size: int = Field(512, ge=1)
    seq_len: int = Field(256, ge=2)
    batch_size: int = Field(16, ge=1)
    steps: int = Field(
        450,
        ge=1,
        description="450, not 600: the time saved pays for the demo's third seed, which narrows "
        "the intervals more (docs/tiny-regime.md, round 5)",
    )
    lr: float = Field(4e-3, gt=0)
    warmup_steps: int = Field(50, ge=0)
    schedule: Literal["constant", "linear", "cosine"] = "cosine"
    min_lr_ratio: float = Field(0.25, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    seed: int = 0
    threads: int | None = Field(None, ge=1)
    settle_steps: int = Field(
        0,
        ge=0,
        description="after the schedule, updates at its final lr with settle_batch_size "
        "sequences, so that a continuation at that smaller batch starts from AdamW moments "
        "matched to its noisier gradients, without the loss spike of a batch switch; off by "
        "default: on the demo it slowed forgetting and widened the intervals "
        "(docs/tiny-regime.md, round 7)",
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
        raise _one_line(e, "--set") from None
