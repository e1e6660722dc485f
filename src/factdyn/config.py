"""Typed configuration of a run: YAML in, dotted overrides, validation, resolved YAML out.

Every field has the default of the offline tiny run, so ``factdyn train`` with no file runs
the demo experiment (the command fills the cached world and base model); ``factdyn train
--print-config`` shows them (``configs/tiny.yaml``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from factdyn.errors import DataError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


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


class OptimConfig(_Section):
    lr: float | None = Field(None, description="peak lr; null = the checkpoint's last lr")
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    schedule_start: int | None = Field(
        None, description="schedule position at step 0; null = checkpoint's"
    )
    schedule_total: int | None = Field(
        None, description="schedule length; null = start + train.steps"
    )
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = Field(0.0, ge=0)
    decay_exclude: list[Literal["norm", "bias", "embedding"]] = Field(
        [],
        description="parameter kinds AdamW does not decay, as in the base model's own recipe: "
        "norm (norm layers' weights), bias (every .bias), embedding (input embeddings)",
    )
    grad_clip: float | None = 1.0
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
    start: int | None = Field(None, description="first sequence position; null = after the base's")
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
    scenarios: list[ScenarioConfig] = [
        ScenarioConfig(name="paraphrase", variant="paraphrase", count=5),
        ScenarioConfig(name="duplicate", variant="duplicate", count=5),
        ScenarioConfig(name="once", variant="duplicate", count=1),
    ]
    n_controls: int = Field(15, ge=0, description="items never injected, to measure drift")
    max_items: int | None = Field(None, ge=1, description="use only the first N items")
    schedule: list[ScheduleEntry] | None = Field(None, description="explicit; replaces scenarios")
    placement: Literal["prepend", "replace"] = "prepend"
    allow_truncation: bool = False


class EvalConfig(_Section):
    schedule: Literal["every", "sparse"] = "sparse"
    window: int = Field(10, ge=1, description="t_w: steps after each injection (LAM window)")
    log_points: int = Field(30, ge=1, description="sparse: log-spaced steps after the last window")
    per_item: bool = Field(
        True,
        description="sparse: score each item only at its own windows and tail (controls always)",
    )
    batch_tokens: int = Field(16384, ge=64)
    contexts: bool = Field(True, description="also score each item's train_context")


class TrainConfig(_Section):
    steps: int = Field(250, ge=1)
    batch_size: int = Field(16, ge=1, description="global batch in sequences")
    micro_batch_size: int | None = Field(None, ge=1, description="per process; null = whole batch")
    seed: int = 0
    checkpoint_every: int = Field(50, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    threads: int | None = Field(None, ge=1, description="torch CPU threads; null = torch default")


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


def _parse_value(text: str) -> object:
    """A command-line value, read as YAML so numbers, booleans, null and lists work."""
    return yaml.safe_load(text) if text != "" else ""


def apply_overrides(raw: dict, overrides: list[str], source: str = "--set") -> dict:
    """Apply ``section.key=value`` overrides to a raw config dict (copied)."""
    out = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for ov in overrides:
        if "=" not in ov:
            raise DataError(f"{source} {ov!r}: expected section.key=value")
        key, value = ov.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise DataError(f"{source} {ov!r}: '{p}' is not a section")
        node[parts[-1]] = _parse_value(value)
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or the defaults), apply overrides, validate with one-line errors."""
    source = str(path) if path else "defaults"
    raw: dict = {}
    if path:
        path = Path(path)
        if not path.is_file():
            packaged = Path(__file__).parent / "configs" / f"{path.name.removesuffix('.yaml')}.yaml"
            if not packaged.is_file():
                raise DataError(f"{path}: no such config file or preset")
            path = packaged
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise DataError(f"{path}: YAML error: {str(e).splitlines()[0]}") from None
        if not isinstance(raw, dict):
            raise DataError(f"{path}: expected a mapping of sections")
    raw = apply_overrides(raw, overrides or [])
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        raise DataError(f"{source}, field '{loc}': {err['msg']}") from None


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


class BaseConfig(_Section):
    """The tiny Llama that ``factdyn pretrain`` trains from scratch on a generated world."""

    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 512
    seq_len: int = 256
    batch_size: int = 16
    steps: int = 600
    lr: float = 4e-3
    warmup_steps: int = 50
    schedule: Literal["constant", "linear", "cosine"] = "cosine"
    min_lr_ratio: float = 0.5
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    threads: int | None = None


def load_base_config(overrides: list[str] | None = None) -> BaseConfig:
    raw = apply_overrides({}, overrides or [])
    try:
        return BaseConfig.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        raise DataError(f"--set, field '{'.'.join(map(str, err['loc']))}': {err['msg']}") from None
