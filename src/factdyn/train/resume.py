"""What ``factdyn train --resume`` accepts, and the lock that makes a run's writer unique.

A run continues the configuration it started with: ``meta.json`` records it (``config``,
canonical dump, and its ``config_sha256``), and a resume whose ``config.yaml``, CONFIG
argument or ``--set``/``--steps`` resolves to anything else is refused with one line naming
the fields, but for the one change documented as safe: a longer ``train.steps`` (checked
further by :func:`factdyn.train.plan.check_extension`; the logs then grow when the
checkpointer restores them). One process at a time writes a run: it holds ``fcntl.flock`` on
``RUN/.lock``, which names it (:mod:`factdyn.train.lock`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from factdyn.config import (
    SIDE_FIELDS,
    RunConfig,
    changed_fields,
    describe_changes,
    dump_config,
    load_config,
)
from factdyn.errors import DataError
from factdyn.rundir import read_meta
from factdyn.train.lock import FolderLock

EXTENSIBLE = "train.steps"
SIDE = {".".join(f) for f in SIDE_FIELDS}  # may change on resume


def config_sha256(cfg: RunConfig) -> str:
    """SHA-256 of the canonical dump (what config.yaml holds): formatting and comments in an
    edited file do not count, values do."""
    return hashlib.sha256(dump_config(cfg).encode()).hexdigest()


def config_record(cfg: RunConfig) -> dict:
    """meta.json's record of the resolved configuration a run continues."""
    return {"config_sha256": config_sha256(cfg), "config": cfg.model_dump(mode="json")}


def requested_config(run_dir: Path, config: str | Path | None, overrides: list[str]) -> RunConfig:
    """What a ``--resume`` command line asks for: CONFIG (default: the run's config.yaml)
    with the overrides applied; :func:`resume_config` compares it with the run's own."""
    read_meta(run_dir)
    return load_config(config or Path(run_dir) / "config.yaml", overrides)


def _refusal(recorded: dict, given: RunConfig, source: str) -> str | None:
    """Why ``given`` may not continue a run started as ``recorded`` (None: it may)."""
    new = given.model_dump(mode="json")
    bad = [
        f
        for f in changed_fields(recorded, new)
        if f not in SIDE and (f != EXTENSIBLE or new["train"]["steps"] < recorded["train"]["steps"])
    ]
    if not bad:
        return None
    return (
        f"{source} changes {describe_changes(recorded, new, bad)}; a resume continues the run's own configuration "
        "(only a longer train.steps is allowed; start a new run with --out for anything else)"
    )


def resume_config(
    run_dir: Path, requested: RunConfig | None, source: str = "the command line"
) -> tuple[RunConfig, RunConfig]:
    """(the configuration the run started with, the one it continues with).

    The run's config.yaml must still say what meta.json recorded, and so must ``requested``
    (``source``'s; None: config.yaml's), but for a longer train.steps. A run from before
    meta.json recorded its configuration is held to its config.yaml.
    """
    meta = read_meta(run_dir)
    on_disk = load_config(Path(run_dir) / "config.yaml")
    recorded = meta.get("config")
    if not isinstance(recorded, dict):
        recorded = on_disk.model_dump(mode="json")
    for whose, given in ((f"{run_dir}/config.yaml", on_disk), (source, requested)):
        if given is not None and (why := _refusal(recorded, given, whose)):
            raise DataError(f"{run_dir}: resume refused: {why}")
    return RunConfig.model_validate(recorded), requested or on_disk


class RunLock(FolderLock):
    """The run's writer lock, ``RUN/.lock`` (:class:`~factdyn.train.lock.FolderLock`), for as
    long as this process writes the run; a second writer is refused naming the first."""

    def __init__(self, run_dir: Path):
        super().__init__(
            run_dir,
            lambda holder, path: (
                f"{run_dir}: the run is being written by {holder} (it holds {path}); "
                "wait for it to end or stop it, then resume"
            ),
        )
