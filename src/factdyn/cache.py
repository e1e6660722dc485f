"""factdyn's cache of the offline world and base model (``$FACTDYN_CACHE``, default
``~/.cache/factdyn``): built on first use, reused while their configuration is unchanged."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from factdyn.config import BaseConfig

# The demo world: enough items for three scenarios plus controls, see README "The offline world".
DEFAULT_WORLD = {"items": 30, "seed": 0, "corpus_mb": 20.0, "entities": 2000}


def root() -> Path:
    return Path(os.environ.get("FACTDYN_CACHE", Path.home() / ".cache" / "factdyn"))


def _key(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def default_world(**overrides: object) -> Path:
    """The generated world with the demo's settings, generated once."""
    from factdyn.data.generator import generate_world

    spec = {**DEFAULT_WORLD, **overrides}
    out = root() / f"world-{_key(spec)}"
    if not (out / "knowledge.json").is_file():
        generate_world(
            out,
            n_items=spec["items"],
            seed=spec["seed"],
            corpus_mb=spec["corpus_mb"],
            entities=spec["entities"],
        )
    return out


def default_base(world: Path, cfg: BaseConfig | None = None) -> Path:
    """The tiny base model pretrained on ``world``, trained once per (world, config)."""
    from factdyn.train.base import pretrain

    cfg = cfg or BaseConfig()
    manifest = (
        (world / "corpus" / "manifest.json").read_text()
        if (world / "corpus" / "manifest.json").is_file()
        else str(world)
    )
    settings = cfg.model_dump(exclude={"threads"})  # threads change speed, not the model
    out = root() / f"base-{_key([manifest, settings])}"
    if not (out / "state.json").is_file():
        pretrain(world, out, cfg)
    return out
