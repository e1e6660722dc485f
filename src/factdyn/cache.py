"""factdyn's cache of the offline world and base model (``$FACTDYN_CACHE``, default
``~/.cache/factdyn``): where each lives, keyed by its settings, and whether it is built.

Nothing here builds anything (the data layer reads the cache too, so this module stays below
it): :mod:`factdyn.train.cached` generates the world and pretrains the base into these paths
when they are not built yet.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from factdyn.config import BaseConfig

# The demo world: enough items for three scenarios plus controls, see README "The offline world".
DEFAULT_WORLD = {"items": 60, "seed": 0, "corpus_mb": 20.0, "entities": 2000}


def root() -> Path:
    return Path(os.environ.get("FACTDYN_CACHE", Path.home() / ".cache" / "factdyn"))


def _key(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def world_spec(**overrides: object) -> dict:
    """The demo world's generator settings, with ``overrides``."""
    return {**DEFAULT_WORLD, **overrides}


def world_path(spec: dict) -> Path:
    return root() / f"world-{_key(spec)}"


def world_built(path: Path) -> bool:
    return (path / "knowledge.json").is_file()


def base_path(world: Path, cfg: BaseConfig) -> Path:
    """Where the base pretrained on ``world`` with ``cfg`` lives (one per world and config)."""
    manifest = world / "corpus" / "manifest.json"
    corpus = manifest.read_text() if manifest.is_file() else str(world)
    # threads change speed, not the model; a base without settling keeps the key it had
    # before settling existed, so its cache entry (and the runs that name it) stay valid
    unkeyed = {"threads"} | (
        {"settle_steps", "settle_batch_size"} if not cfg.settle_steps else set()
    )
    settings = cfg.model_dump(exclude=unkeyed)
    return root() / f"base-{_key([corpus, settings])}"


def base_built(path: Path) -> bool:
    return (path / "state.json").is_file()
