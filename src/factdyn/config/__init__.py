"""Typed configuration of a run: YAML in, dotted overrides, validation, resolved YAML out.

Every field has the default of the offline tiny run, so ``factdyn train`` with no file runs
the demo experiment (the command fills the cached world and base model); ``factdyn train
--print-config`` shows them (``configs/tiny.yaml``), and docs/config.md lists every field.

- :mod:`~factdyn.config.sections`: the run's sections and fields; :mod:`~factdyn.config.base`
  the base model's (``factdyn pretrain``).
- :mod:`~factdyn.config.load`: a file with ``--set`` strings, or a typed :func:`updated`.
- :mod:`~factdyn.config.reading` and :mod:`~factdyn.config.messages`: YAML and ``--set`` text
  in; a validation error out as one line.
- :mod:`~factdyn.config.record`: the YAML a run records and how two recorded ones differ.
- :mod:`~factdyn.config.explain`, :mod:`~factdyn.config.reference`: ``--explain`` and
  docs/config.md, both from the fields' own descriptions (:mod:`~factdyn.config.field_text`).
"""

from factdyn.config.base import BaseConfig
from factdyn.config.explain import explain_config
from factdyn.config.field_text import _model_in
from factdyn.config.load import load_base_config, load_config, updated
from factdyn.config.messages import _one_line
from factdyn.config.reading import apply_overrides, read_mapping, read_yaml
from factdyn.config.record import (
    changed_fields,
    describe_changes,
    dump_config,
    with_absolute_paths,
)
from factdyn.config.sections import (
    SIDE_FIELDS,
    DataConfig,
    EvalConfig,
    InjectionConfig,
    ModelConfig,
    ModelShape,
    OptimConfig,
    RunConfig,
    ScenarioConfig,
    ScheduleEntry,
    TrainConfig,
    _Section,
)

__all__ = [
    "SIDE_FIELDS",
    "BaseConfig",
    "DataConfig",
    "EvalConfig",
    "InjectionConfig",
    "ModelConfig",
    "ModelShape",
    "OptimConfig",
    "RunConfig",
    "ScenarioConfig",
    "ScheduleEntry",
    "TrainConfig",
    "_Section",
    "_model_in",
    "_one_line",
    "apply_overrides",
    "changed_fields",
    "describe_changes",
    "dump_config",
    "explain_config",
    "load_base_config",
    "load_config",
    "read_mapping",
    "read_yaml",
    "updated",
    "with_absolute_paths",
]
