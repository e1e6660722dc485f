"""Size and cost of a sweep's runs before anything is built (``factdyn reproduce --dry-run``)."""

from __future__ import annotations

from dataclasses import dataclass

from factdyn.config import ModelShape, RunConfig
from factdyn.data.generator import VOCAB_SIZE
from factdyn.sweep.grid import Grid, RunSpec
from factdyn.train.estimate import estimate, run_hours


@dataclass(frozen=True)
class Estimate:
    parameters: int
    tokens: float  # trained tokens
    hours: float  # wall hours on ``devices`` devices
    devices: int


def _with_shape(spec: RunSpec) -> RunConfig:
    """The tiny run's config with its base's architecture, so nothing needs to be built."""
    cfg = spec.config.model_copy(deep=True)
    if spec.base is not None:
        b = spec.base
        cfg.model.name = cfg.model.name or "factdyn-tiny-base"
        cfg.model.shape = ModelShape(
            family="llama",
            layers=b.layers,
            hidden_size=b.hidden_size,
            intermediate_size=b.intermediate_size,
            heads=b.heads,
            kv_heads=None,
            vocab_size=VOCAB_SIZE,
            tie_embeddings=True,
        )
    return cfg


PROBES_PER_ITEM = 15  # 5 per depth
TOKENS_PER_PROBE = 24  # input + target, padded: a rough mean of the generated and paper probes


def scored_tokens_per_step(spec: RunSpec) -> float:
    """Probe tokens scored per step, roughly: every item's probes at every step (``every``),
    a tenth of that on a sparse schedule."""
    cfg = spec.config
    items = spec.world["items"] if spec.world else cfg.injection.max_items or 120
    share = 1.0 if cfg.eval.schedule == "every" else 0.1
    return share * items * PROBES_PER_ITEM * TOKENS_PER_PROBE


def spec_estimate(spec: RunSpec, grid: Grid) -> Estimate:
    cfg = _with_shape(spec)
    devices = 1 if spec.base is not None else grid.slurm.gpus_per_node * grid.slurm.nodes
    e = estimate(cfg, devices)
    hours = run_hours(cfg, devices, grid.flops_per_second, scored_tokens_per_step(spec))
    return Estimate(
        parameters=int(e["parameters"]),
        tokens=float(e["tokens_per_step"] * cfg.train.steps),
        hours=hours,
        devices=devices,
    )
