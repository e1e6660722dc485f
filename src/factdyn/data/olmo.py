"""OLMo's pre-tokenized training data: memmap shards plus the global data-order index.

OLMo cuts each shard (a flat array of token ids, raw ``np.memmap`` or ``.npy``) into
fixed-length instances, numbers the instances of all shards in order, and reads them in the
order of ``global_indices.npy``. Position ``p`` of our stream is ``global_indices[p]``, so a
run started at position ``step × original_batch_size`` sees exactly the batches the original
run saw from that step on (``data.seed`` 0).

Another ``data.seed`` reads the same positions in another order: the positions are shuffled
within consecutive windows of :data:`SHUFFLE_WINDOW` (each window's permutation drawn from
the seed and the window's number), so the stream stays seekable and a resume needs no state,
and memory stays one window's permutation however long the index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from factdyn.errors import DataError

_NPY_MAGIC = b"\x93NUMPY"
# positions shuffled together by a non-zero data.seed
SHUFFLE_WINDOW = 1 << 16


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
    seed: int = 0  # 0: the index's own order; else shuffled within windows
    window: int = SHUFFLE_WINDOW
    _perm: tuple[int, np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        counts = np.array([len(s) // self.seq_len for s in self.shards], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        n = int(self.offsets[-1])
        if len(self.index) and int(self.index.max()) >= n:
            raise DataError(
                f"data order index names instance {int(self.index.max())}, shards hold {n}"
            )

    def order(self, position: int) -> int:
        """The index position read at stream ``position`` (itself for seed 0)."""
        if not self.seed:
            return position
        w, i = divmod(position, self.window)
        if self._perm is None or self._perm[0] != w:
            size = min(self.window, len(self.index) - w * self.window)
            self._perm = (w, np.random.default_rng([self.seed, w]).permutation(size))
        return w * self.window + int(self._perm[1][i])

    def sequence(self, position: int) -> np.ndarray:
        if position >= len(self.index):
            raise DataError(
                f"data order index has {len(self.index)} positions, asked for {position}"
            )
        inst = int(self.index[self.order(position)])
        shard = int(np.searchsorted(self.offsets, inst, side="right")) - 1
        i = inst - int(self.offsets[shard])
        return np.asarray(
            self.shards[shard][i * self.seq_len : (i + 1) * self.seq_len], dtype=np.int64
        )


def open_olmo(
    files: list[str] | str, index: str | None, seq_len: int, dtype: str, seed: int = 0
) -> OlmoMemmap:
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
    return OlmoMemmap(shards, order, seq_len, seed)
