"""OLMo's pre-tokenized training data: memmap shards plus the global data-order index.

OLMo cuts each shard (a flat array of token ids, raw ``np.memmap`` or ``.npy``) into
fixed-length instances, numbers the instances of all shards in order, and reads them in the
order of ``global_indices.npy``. Position ``p`` of our stream is ``global_indices[p]``, so a
run started at position ``step × original_batch_size`` sees exactly the batches the original
run saw from that step on (SPEC §4).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from factdyn.errors import DataError

_NPY_MAGIC = b"\x93NUMPY"


def open_tokens(path: Path, dtype: str) -> np.ndarray:
    """A shard as a read-only memmap (``.npy`` with a header, or OLMo's raw memmap)."""
    if not path.is_file():
        raise DataError(f"{path}: no such token shard")
    with path.open("rb") as f:
        is_npy = f.read(6) == _NPY_MAGIC
    return (
        np.load(path, mmap_mode="r") if is_npy else np.memmap(path, dtype=np.dtype(dtype), mode="r")
    )


@dataclass
class OlmoMemmap:
    """Instances of ``seq_len`` tokens from shards, read in a global data order."""

    shards: list[np.ndarray]
    index: np.ndarray  # global data order: position -> instance id
    seq_len: int

    def __post_init__(self) -> None:
        counts = np.array([len(s) // self.seq_len for s in self.shards], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        n = int(self.offsets[-1])
        if len(self.index) and int(self.index.max()) >= n:
            raise DataError(
                f"data order index names instance {int(self.index.max())}, shards hold {n}"
            )

    def sequence(self, position: int) -> np.ndarray:
        if position >= len(self.index):
            raise DataError(
                f"data order index has {len(self.index)} positions, asked for {position}"
            )
        inst = int(self.index[position])
        shard = int(np.searchsorted(self.offsets, inst, side="right")) - 1
        i = inst - int(self.offsets[shard])
        return np.asarray(
            self.shards[shard][i * self.seq_len : (i + 1) * self.seq_len], dtype=np.int64
        )


def open_olmo(files: list[str] | str, index: str | None, seq_len: int, dtype: str) -> OlmoMemmap:
    if isinstance(files, str):  # a manifest: one shard path per line
        manifest = Path(files)
        if not manifest.is_file():
            raise DataError(f"{manifest}: no such shard list (field 'data.files')")
        files = [ln.strip() for ln in manifest.read_text().splitlines() if ln.strip()]
    shards = [open_tokens(Path(f), dtype) for f in files]
    if not shards:
        raise DataError("config, field 'data.files': OLMo source needs its token shards")
    if index is None:
        order = np.arange(sum(len(s) // seq_len for s in shards), dtype=np.int64)
    else:
        order = open_tokens(Path(index), "uint32")
    return OlmoMemmap(shards, order, seq_len)
