"""torch.distributed setup that also runs as one plain process (nanoGPT's pattern).

Launched by ``torchrun`` the environment names RANK/WORLD_SIZE and we join a process group
(NCCL on GPUs, gloo on CPU); otherwise everything here is a no-op over a world of one. The
model code knows nothing of this: :func:`wrap` is applied after the model is built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from factdyn.errors import DataError


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(pref: str) -> torch.device:
    """The torch device for ``auto``, ``cpu``, ``cuda[:i]``...; one that is not a device or
    that this machine lacks is a :class:`DataError` (before anything is written)."""
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(pref)
    except RuntimeError:
        raise DataError(f"device '{pref}': not a device name (auto, cpu, cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"device '{pref}': CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DataError(f"device '{pref}': this machine has {torch.cuda.device_count()} GPUs")
    return dev


def setup(device: str = "auto") -> World:
    """Join the process group when launched by torchrun; pick this rank's device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if size == 1:
        return World(0, 1, dev)
    rank = int(os.environ["RANK"])
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return World(rank, size, dev)


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The decoder blocks FSDP2 shards one by one: ``base_model.layers`` in transformers'
    causal LMs (``model.layers`` for Llama/OLMo, ``gpt_neox.layers`` for Pythia)."""
    return list(getattr(getattr(model, "base_model", model), "layers", []))


def wrap(model: torch.nn.Module, world: World, fsdp: bool = False) -> torch.nn.Module:
    """DDP, or FSDP2 sharding of each decoder layer and the root, for a multi-process run.
    FSDP2 also shards over a world of one when the caller has initialised a one-process group
    (a single GPU is a valid FSDP world: benchmarks/gpu_check.py checks the path there)."""
    if fsdp and (world.size > 1 or dist.is_initialized()):
        from torch.distributed.fsdp import fully_shard

        for layer in decoder_layers(model):
            fully_shard(layer)
        return fully_shard(model)
    if world.size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [world.device.index] if world.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_reduce_sum(x: float, world: World) -> float:
    if world.size == 1:
        return x
    t = torch.tensor(
        [x], dtype=torch.float64, device=world.device if world.device.type == "cuda" else "cpu"
    )
    dist.all_reduce(t)
    return float(t.item())


def gather_rows(local: np.ndarray, index: np.ndarray, n: int, world: World) -> np.ndarray:
    """Reassemble rows scored on different ranks (``index`` = this rank's row ids) into
    ``n`` rows; rows no rank scored are NaN."""
    parts: list = [(index, local)]
    if world.size > 1:
        parts = [None] * world.size
        dist.all_gather_object(parts, (index, local))
    out = np.full((n, *local.shape[1:]), np.nan, dtype=local.dtype)
    for idx, arr in parts:
        out[idx] = arr
    return out


def gather_objects(obj: object, world: World) -> list | None:
    """Every rank's ``obj`` (picklable) on the main rank, in rank order; None elsewhere. A
    collective: every rank calls it. A world of one needs no process group."""
    if world.size == 1:
        return [obj]
    parts: list | None = [None] * world.size if world.main else None
    dist.gather_object(obj, parts, dst=0)
    return parts


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def teardown(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
