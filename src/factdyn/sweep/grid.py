"""Grid files: the paper's comparisons as data (``factdyn reproduce``).

A grid names one run configuration (the *reference* point) and axes of points that each
change one factor of it: ``stage`` (an earlier checkpoint), ``size``, ``batch_size``,
``lr_control`` (stages at one equal constant learning rate), ``scenarios`` and ``other``.
A point changes the run config (``config`` preset, ``set`` overrides) and, for the offline
tiny model, the base it continues (``base``: the tiny base's settings, ``stage``: the
fraction of the base's pretraining the checkpoint had seen, one of its snapshots). Every
point runs ``replicates`` times; replicate r reads the r-th next block of the data stream
(``data.start``), so the replicates see different text and are pooled by the report.

Grids ship with the package (every file of ``factdyn/grids``: :func:`factdyn.sweep.packaged_grids`,
named bare: ``tiny``) or are YAML files; they are validated like configs, every error one line
naming the file, the point and the field (a bad ``set`` names its grid, point and override).
Paths in a grid file are the grid's: a ``config`` file and an input path in a ``set``
(``data.path``, ``model.name``, ``injection.items``) are taken from the grid file's folder
(:func:`_anchored`), so a grid means the same sweep from any working directory; a bare
``config`` name that is no file there is the packaged preset. The ``slurm`` section can be
changed from the command line (``--set slurm.partition=gpu``, :func:`with_slurm_overrides`).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from factdyn import cache
from factdyn.config import (
    BaseConfig,
    RunConfig,
    _one_line,
    _Section,
    apply_overrides,
    load_config,
    read_mapping,
    updated,
)
from factdyn.config.load import PRESETS
from factdyn.config.reading import find_yaml
from factdyn.errors import DataError
from factdyn.sweep import GRIDS

AXES = ("stage", "size", "batch_size", "lr_control", "scenarios", "other")
REFERENCE = "reference"
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # a point's, hence a run directory's, name
Name = Field(pattern=NAME, max_length=60)


class Point(_Section):
    """One condition: what it changes in the reference point."""

    name: str = Name
    config: str | None = Field(None, description="preset or YAML file (default: the grid's)")
    set: list[str] = Field([], description="config overrides, section.key=value")
    base: dict[str, object] = Field({}, description="tiny base settings (BaseConfig fields)")
    stage: float | None = Field(
        None, gt=0, le=1, description="tiny base: the snapshot after this share of pretraining"
    )


class Slurm(_Section):
    """What each Slurm array task asks for (``--launcher slurm``)."""

    partition: str | None = Field(
        None, description="sbatch --partition (null: the cluster's default)"
    )
    account: str | None = Field(None, description="sbatch --account")
    qos: str | None = Field(None, description="sbatch --qos")
    constraint: str | None = Field(None, description="sbatch --constraint (node features)")
    nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(1, ge=0)
    cpus_per_task: int = Field(8, ge=1)
    mem_gb: int | None = Field(None, ge=1)
    time_min: int = Field(240, ge=1)

    @field_validator("nodes")
    @classmethod
    def _one_node(cls, nodes: int) -> int:
        # each task runs `torchrun --standalone`: a second node would train the run twice
        if nodes != 1:
            raise ValueError("runs span one node each (torchrun --standalone); use gpus_per_node")
        return nodes


class Quick(_Section):
    """What ``--quick`` changes: a smaller world, base and runs (and axes, if given)."""

    world: dict[str, object] = {}
    base: dict[str, object] = {}
    set: list[str] = []
    axes: dict[Literal[AXES], list[Point]] | None = None  # type: ignore[valid-type]


class Grid(_Section):
    description: str = ""
    config: str | None = Field(None, description="preset or YAML file (null: the tiny run)")
    set: list[str] = []
    world: dict[str, object] = Field({}, description="tiny world generator settings")
    base: dict[str, object] = Field({}, description="tiny base settings")
    replicates: int = Field(1, ge=1, le=100)
    axes: dict[Literal[AXES], list[Point]] = {}  # type: ignore[valid-type]
    slurm: Slurm = Slurm()
    flops_per_second: float = Field(
        4e14, gt=0, description="per device, for the --dry-run time estimate (bf16, ~40% MFU)"
    )
    quick: Quick | None = None


@dataclass(frozen=True)
class RunSpec:
    """One run of the sweep: a point × replicate, its config before the cache fills it."""

    name: str  # the run directory's name under DIR/runs
    point: str
    axis: str  # REFERENCE for the reference point
    replicate: int
    config: RunConfig
    base: BaseConfig | None  # the tiny base it continues (None: config.model.name)
    stage: float | None
    world: dict | None  # the tiny world's generator settings (None: config.data.path)


def _where(source: str, loc: str) -> str:
    return f"{source}: {loc}" if loc else source


def load_grid(name_or_path: str | Path) -> tuple[Grid, str]:
    """The grid file (or packaged grid, by its bare name), validated, its paths taken from
    its folder; returns it and its name for messages."""
    source = str(name_or_path)
    path = find_yaml(name_or_path, GRIDS, "grid")
    raw = read_mapping(path, GRIDS, "grid")
    try:
        grid = Grid.model_validate(raw)
    except ValidationError as e:
        raise _one_line(e, source) from None
    return _anchored(grid, path.parent, source), source


INPUTS = ("data.path", "model.name", "injection.items")  # the run's local input paths


def _own_path(text: str, folder: Path) -> str:
    """``text`` (a path in a grid file) as the grid's folder means it: absolute when it names
    something there, as given otherwise (an absolute path, a hub id, a packaged name)."""
    here = folder / text
    return str(here.resolve()) if text and not Path(text).is_absolute() and here.exists() else text


def _anchored(grid: Grid, folder: Path, source: str) -> Grid:
    """``grid`` with its paths taken from ``folder`` (its file's): every ``config`` (a file
    there, or a packaged preset by its bare name; no such file is an error naming the point)
    and the input paths of every ``set``."""

    def config(name: str | None, where: str) -> str | None:
        if name is None:
            return None
        try:
            found = find_yaml(name, PRESETS, "config", base=folder)
        except DataError as e:
            raise DataError(f"{where}, field 'config': {e}") from None
        return str(found.resolve()) if (folder / name).is_file() else name  # else packaged

    def sets(overrides: list[str]) -> list[str]:
        out = []
        for ov in overrides:
            key, eq, value = ov.partition("=")
            inside = key.strip() in INPUTS and eq
            out.append(f"{key}={_own_path(value.strip(), folder)}" if inside else ov)
        return out

    def point(p: Point, where: str) -> Point:
        return p.model_copy(update={"config": config(p.config, where), "set": sets(p.set)})

    def axes(given: dict) -> dict:
        return {
            a: [point(p, f"{source}: axes.{a}.{p.name}") for p in ps] for a, ps in given.items()
        }

    quick = grid.quick
    if quick is not None:
        new_axes = axes(quick.axes) if quick.axes is not None else None
        quick = quick.model_copy(update={"set": sets(quick.set), "axes": new_axes})
    update = {"config": config(grid.config, source), "set": sets(grid.set), "quick": quick}
    return grid.model_copy(update={**update, "axes": axes(grid.axes)})


SLURM_TEXT = (
    "partition",
    "account",
    "qos",
    "constraint",
)  # names, even when they look like numbers


def is_slurm_override(override: str) -> bool:
    """``--set slurm.KEY=VALUE`` (or ``slurm=...``): a setting of the grid's ``slurm`` section,
    not of the runs' config."""
    key = override.partition("=")[0].strip()
    return key == "slurm" or key.startswith("slurm.")


def with_slurm_overrides(slurm: Slurm, overrides: list[str]) -> Slurm:
    """``slurm`` with ``--set slurm.KEY=VALUE`` overrides applied, each validated: an unknown
    setting or a bad value is one line naming the override (with the closest setting)."""
    fields = sorted(Slurm.model_fields)
    for ov in overrides:
        where = f"--set {ov}"
        given = apply_overrides({}, [ov]).get("slurm")
        if not isinstance(given, dict):
            raise DataError(f"{where}: expected slurm.KEY=VALUE (slurm has: {', '.join(fields)})")
        raw = slurm.model_dump()
        for key, value in given.items():
            if key not in Slurm.model_fields:
                close = difflib.get_close_matches(str(key), fields, n=1, cutoff=0.6) or [
                    f
                    for f in fields
                    if str(key) in f  # gpus: gpus_per_node
                ]
                hint = f"; did you mean 'slurm.{close[0]}'?" if close else ""
                raise DataError(
                    f"{where}: unknown key 'slurm.{key}'{hint} (slurm has: {', '.join(fields)})"
                )
            if key in SLURM_TEXT and isinstance(value, int | float) and not isinstance(value, bool):
                value = ov.partition("=")[2].strip()  # an account named 1234 is a name
            raw[key] = value
        try:
            slurm = Slurm.model_validate(raw)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            msg = " ".join(f"{where}: field 'slurm.{loc}': {err['msg']}".split())
            raise DataError(msg) from None
    return slurm


def _base(overrides: list[dict], where: str) -> BaseConfig:
    raw: dict = {}
    for o in overrides:
        raw.update(o)
    try:
        return BaseConfig.model_validate(raw)
    except ValidationError as e:
        raise _one_line(e, where) from None


def _world(overrides: list[dict], where: str) -> dict:
    spec = cache.world_spec()
    for o in overrides:
        unknown = sorted(set(o) - set(spec))
        if unknown:
            raise DataError(f"{where}, field 'world.{unknown[0]}': not a world setting")
        spec.update(o)
    return spec


def points(grid: Grid, quick: bool = False) -> list[tuple[str, Point]]:
    """(axis, point) of every condition, the reference first; names unique."""
    axes = grid.quick.axes if quick and grid.quick and grid.quick.axes is not None else grid.axes
    out = [(REFERENCE, Point(name=REFERENCE))]
    out += [(axis, p) for axis in AXES for p in axes.get(axis, [])]
    return out


def expand(
    grid: Grid, source: str, quick: bool = False, overrides: Sequence[str] = ()
) -> list[RunSpec]:
    """Every run of the grid, validated: configs, base and world settings, unique names.
    ``overrides`` (``--set``) apply to every run after the grid's own; a bad value names
    the override, and the grid and point when the grid gave it.

    Points whose resolved settings equal an earlier point's are the same run and are kept
    once (under the earlier name)."""
    q = grid.quick if quick and grid.quick else Quick()
    seen: set[str] = set()
    names: set[str] = set()
    specs: list[RunSpec] = []
    for axis, p in points(grid, quick):
        where = _where(source, "" if axis == REFERENCE else f"axes.{axis}.{p.name}")
        if p.name in names:
            raise DataError(f"{where}: point name {p.name!r} is used twice")
        names.add(p.name)
        preset = p.config or grid.config
        given = [
            (ov, label)
            for group, label in (
                (grid.set, f"{source}: set"),
                (q.set, f"{source}: quick.set"),
                (p.set, f"{where}: set"),
                (overrides, "--set"),
            )
            for ov in group
        ]
        cfg = load_config(
            find_yaml(preset, PRESETS, "config", base=PRESETS) if preset else None,
            [ov for ov, _ in given],
            [label for _, label in given],
        )
        tiny = cfg.data.source == "world" and cfg.model.name is None
        if not tiny and (p.base or p.stage is not None):
            raise DataError(f"{where}: 'base' and 'stage' need the tiny model (model.name null)")
        base = _base([grid.base, q.base, p.base], where) if tiny else None
        if base is not None and p.stage not in (None, 1.0) and p.stage not in base.snapshots:
            raise DataError(
                f"{where}, field 'stage': {p.stage} is not a snapshot of the base "
                f"(base.snapshots: {list(base.snapshots)}, or 1.0)"
            )
        world = _world([grid.world, q.world], source) if tiny and cfg.data.path is None else None
        key = repr((cfg.model_dump(), base, p.stage if p.stage != 1.0 else None, world))
        if key in seen:
            continue
        seen.add(key)
        for r in range(grid.replicates):
            name = p.name if grid.replicates == 1 else f"{p.name}-r{r}"
            specs.append(RunSpec(name, p.name, axis, r, cfg, base, p.stage, world))
    return specs


def with_start(cfg: RunConfig, position: int, replicate: int) -> RunConfig:
    """``cfg`` reading the ``replicate``-th block of ``train.steps × batch_size`` sequences
    after ``position`` (replicate 0: the config as it is)."""
    if replicate == 0:
        return cfg
    start = (cfg.data.start if cfg.data.start is not None else position) + replicate * (
        cfg.train.steps * cfg.train.batch_size
    )
    return updated(cfg, data={"start": start})
