"""Live tracking of a run in TensorBoard or Weights & Biases: a callback of the loop.

What is logged (the main rank only; every tracker gets the same values):

- after every update t (x = t, the row of ``train.npy``): ``train/loss``, ``train/lr``,
  ``train/tokens_seen`` and ``train/tokens_per_s`` (wall time since the previous update,
  probe scoring included, as the progress bar counts it);
- at every logged step t (x = t, the model after t updates): ``delta/<scenario>/<depth>``, the
  mean Δℓ of the probes scored at t (ℓ_t − ℓ_0 of ``target_mean``, drift-corrected by the
  control probes' mean at that depth, as the analysis corrects it), and ``drift/<depth>``, the
  control probes' own mean Δℓ;
- at the end (x = total steps): the analysis's effectivity and decay constant of every
  population with their 95% intervals (``final/...``), the findings table, and the resolved
  configuration as hyperparameters.

The per-step means and the end's numbers come from the analysis, which lives above training:
the caller hands them in as a :class:`Readout` (``factdyn train`` gives the analysis's own);
without one, the trackers get the training numbers and the configuration only.

A tracker is a :class:`Sink`; TensorBoard writes event files under ``RUN_DIR/tb/`` and W&B a
run under ``RUN_DIR/wandb/`` (``WANDB_MODE=offline`` needs no network). A resumed run's
TensorBoard log is purged from the resumed step on, so the curves show each step once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from factdyn.errors import DataError
from factdyn.train.callbacks import Callback
from factdyn.train.distributed import World

TRACKERS = ("tensorboard", "wandb")
_PACKAGE = {"tensorboard": "tensorboard", "wandb": "wandb"}


def check_trackers(names: Sequence[str]) -> None:
    """Refuse, before anything is written, a tracker whose package is not installed."""
    for name in names:
        if importlib.util.find_spec(_PACKAGE[name]) is None:
            extra = " (pip install 'factdyn[wandb]')" if name == "wandb" else ""
            raise DataError(f"config, field 'train.trackers': {name} is not installed{extra}")


def flat_config(config: Mapping, prefix: str = "") -> dict[str, float | int | str | bool]:
    """The nested configuration as ``section.field`` keys with scalar values (lists as
    text), which both trackers' hyperparameter views accept."""
    out: dict[str, float | int | str | bool] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_config(value, f"{name}."))
        elif isinstance(value, bool | int | float | str):
            out[name] = value
        else:
            out[name] = "null" if value is None else str(value)
    return out


class Sink(Protocol):
    """One tracker's backend."""

    def scalars(self, step: int, values: Mapping[str, float]) -> None: ...

    def finish(
        self, step: int, values: Mapping[str, float], findings: pd.DataFrame | None
    ) -> None: ...


class TensorBoardSink:
    """Event files under ``RUN_DIR/tb`` (``torch.utils.tensorboard``)."""

    def __init__(self, run_dir: Path, start: int, config: Mapping):
        from torch.utils.tensorboard import SummaryWriter

        self.config = flat_config(config)
        # a resume drops what an earlier process logged from ``start`` on
        self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=start or None)
        if not start:
            rows = pd.DataFrame({"field": list(self.config), "value": list(self.config.values())})
            self.writer.add_text("config", _markdown(rows), 0)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def finish(self, step: int, values: Mapping[str, float], findings) -> None:
        from torch.utils.tensorboard.summary import hparams

        self.scalars(step, values)
        if findings is not None:
            self.writer.add_text("findings", _markdown(findings), step)
        metrics = {k: v for k, v in values.items() if np.isfinite(v)}
        # hyperparameters in this run's own directory (add_hparams would make another run)
        for summary in hparams(self.config, metrics):
            self.writer.file_writer.add_summary(summary)
        self.writer.close()


class WandbSink:
    """A W&B run under ``RUN_DIR/wandb``; its id follows from the run directory, so a
    resumed run continues the same W&B run. ``WANDB_MODE``, ``WANDB_PROJECT`` and the other
    W&B variables apply as usual (project default: factdyn)."""

    def __init__(self, run_dir: Path, start: int, config: Mapping):
        import wandb

        run_id = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
        try:
            self.run = wandb.init(
                project=os.environ.get("WANDB_PROJECT", "factdyn"),
                dir=str(run_dir),
                name=run_dir.name,
                id=run_id,
                resume="allow",
                config=flat_config(config),
            )
        except Exception as e:  # W&B's own errors (no key, no network) have no common base
            raise DataError(
                f"config, field 'train.trackers': wandb did not start ({str(e).splitlines()[0]}); "
                "run 'wandb login', or set WANDB_MODE=offline to log without an account; "
                f"then 'factdyn train --resume {run_dir}'"
            ) from None

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        self.run.log(dict(values), step=step)

    def finish(self, step: int, values: Mapping[str, float], findings) -> None:
        import wandb

        logged: dict = dict(values)
        if findings is not None:
            logged["findings"] = wandb.Table(dataframe=findings)
        self.run.log(logged, step=step)
        self.run.summary.update(dict(values))
        self.run.finish()


SINKS = {"tensorboard": TensorBoardSink, "wandb": WandbSink}


def _markdown(table: pd.DataFrame) -> str:
    """A table as Markdown, which TensorBoard's text view renders."""
    lines = [" | ".join(map(str, table.columns)), " | ".join("---" for _ in table.columns)]
    lines += [" | ".join(str(v).replace("|", "/") for v in row) for row in table.itertuples(False)]
    return "\n".join(f"| {line} |" for line in lines)


class Readout(Protocol):
    """What the trackers show of the analysis, computed by the caller from the run's logs
    (training imports no analysis)."""

    def means(self, row: int) -> Mapping[str, float]:
        """``delta/<scenario>/<depth>`` and ``drift/<depth>`` at logged row ``row``."""
        ...

    def final(self) -> tuple[Mapping[str, float], pd.DataFrame | None]:
        """The ``final/...`` numbers and the findings table (nothing when there are none)."""
        ...


Readouts = Callable[[Path], Readout]  # the run directory's readout, opened once its logs exist


class Tracking(Callback):
    """Sends the run's numbers to the configured trackers (see the module docstring). Its
    state is the next step to send: restored, the trackers drop what an interrupted process
    sent from that step on, and continue."""

    def __init__(
        self,
        names: Sequence[str],
        run_dir: Path,
        config: Mapping,
        steps: np.ndarray,
        tokens_per_step: int,
        world: World,
        readouts: Readouts | None = None,
    ):
        self.names, self.run_dir, self.config = list(names), run_dir, config
        self.row_of = {int(s): i for i, s in enumerate(steps)}
        self.tokens_per_step = tokens_per_step
        self.main = world.main
        self.readouts = readouts
        self.sinks: list[Sink] = []
        self.readout: Readout | None = None
        self.clock = 0.0
        self.step = 0

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])

    def on_train_start(self, step: int) -> None:
        if self.main:
            self.sinks = [SINKS[n](self.run_dir, self.step, self.config) for n in self.names]
            self.readout = self.readouts(self.run_dir) if self.readouts else None
        self.clock = time.perf_counter()

    def _send(self, step: int, values: Mapping[str, float]) -> None:
        for sink in self.sinks:
            sink.scalars(step, values)

    def on_step_start(self, step: int, model) -> None:
        row = self.row_of.get(step)
        if self.readout is not None and row is not None:  # the probe logger ran before this
            self._send(step, self.readout.means(row))

    def on_step_end(self, step: int, loss: float, lr: float) -> None:
        now = time.perf_counter()
        rate = self.tokens_per_step / max(now - self.clock, 1e-9)
        self.clock, self.step = now, step + 1
        if self.sinks:
            tokens = (step + 1) * self.tokens_per_step
            self._send(
                step,
                {
                    "train/loss": loss,
                    "train/lr": lr,
                    "train/tokens_seen": float(tokens),
                    "train/tokens_per_s": rate,
                },
            )

    def on_train_end(self, step: int) -> None:
        if not self.sinks:
            return
        values, findings = self.readout.final() if self.readout else ({}, None)
        for sink in self.sinks:
            sink.finish(step, values, findings)
        self.sinks = []
