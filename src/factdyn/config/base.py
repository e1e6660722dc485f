"""The settings of the tiny base model that ``factdyn pretrain`` trains from scratch."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from factdyn.config.sections import _Section, _tuple

Fraction = Annotated[float, Field(gt=0, lt=1)]


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
