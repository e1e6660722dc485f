"""A world-sourced run's inputs from factdyn's cache (:mod:`factdyn.cache`), built on first
use: the offline world (generated) and the tiny base model (pretrained).

Here, below the demo, the sweep and the command line that all use them, so that none of
them imports another for its inputs; never called inside training.
"""

from __future__ import annotations

import os
from pathlib import Path

from factdyn import cache, progress
from factdyn.config import BaseConfig, RunConfig
from factdyn.errors import DataError


def _single_process(what: Path) -> None:
    """Several processes would build the same cache entry at once."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise DataError(
            f"{what}: not built yet; build it in one process first ('factdyn pretrain')"
        )


def cached_world(**overrides: object) -> Path:
    """The demo world (generator settings ``overrides``), generated on first use."""
    spec = cache.world_spec(**overrides)
    out = cache.world_path(spec)
    if not cache.world_built(out):
        from factdyn.data.generator import generate_world

        _single_process(out)
        progress.phase("building the offline world (first use; cached afterwards)")
        generate_world(
            out,
            n_items=spec["items"],
            seed=spec["seed"],
            corpus_mb=spec["corpus_mb"],
            entities=spec["entities"],
        )
    return out


def cached_base(world: Path, cfg: BaseConfig | None = None) -> Path:
    """The tiny base pretrained on ``world``, trained on first use per (world, config)."""
    cfg = cfg or BaseConfig()
    out = cache.base_path(world, cfg)
    if not cache.base_built(out):
        from factdyn.train.base import pretrain

        _single_process(out)
        pretrain(world, out, cfg)
    return out


def with_cached_inputs(cfg: RunConfig) -> RunConfig:
    """``cfg`` with a missing world (data.path) and base model (model.name) filled from
    factdyn's cache, built on first use (a world-sourced run only)."""
    cfg = cfg.model_copy(deep=True)
    if cfg.data.source == "world" and cfg.data.path is None:
        cfg.data.path = str(cached_world())
    if cfg.data.source == "world" and cfg.model.name is None:
        cfg.model.name = str(cached_base(Path(cfg.data.path)))
    return cfg
