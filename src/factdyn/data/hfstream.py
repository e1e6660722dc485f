"""Any Hugging Face dataset, streamed, tokenized and packed into sequences in stream order.

A hub id or a folder of data files is streamed; a folder written by ``Dataset.save_to_disk``
is memory-mapped (:func:`datasets.load_from_disk`). ``data.seed`` 0 reads the documents in
the dataset's own order; another seed shuffles them, reproducibly: a saved dataset as a whole,
a streamed one through a buffer of :data:`SHUFFLE_BUFFER` documents (and its shards' order).

A dataset shorter than the run is read again, pass after pass (another shuffle each pass for
a non-zero seed). A stream cannot seek, so position ``p`` is reached by reading forward (each rank reads its
own rows in increasing order); a resumed run re-reads from the start up to its position,
which is deterministic (the shuffle too, given its seed) and needs no extra state in the
checkpoint.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from factdyn.errors import DataError

# documents held by a streamed dataset's shuffle buffer (datasets' own default is 1,000)
SHUFFLE_BUFFER = 10_000


def _one_line(path: str, what: str, e: Exception) -> DataError:
    return DataError(f"{path}: {what} ({type(e).__name__}: {e})".splitlines()[0])


def is_saved_dataset(path: str | Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    p = Path(path)
    return (p / "state.json").is_file() or (p / "dataset_dict.json").is_file()


def _pass_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of one pass over the data: another order on every pass."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def open_documents(path: str, split: str, seed: int = 0, epoch: int = 0) -> Iterable[dict]:
    """The rows of a dataset (a ``save_to_disk`` folder, data files, a hub id) in the order
    ``seed`` gives on pass ``epoch``; every failure to open it is one line naming
    ``data.path``."""
    import datasets

    if is_saved_dataset(path):
        try:
            ds = datasets.load_from_disk(path)
        except Exception as e:  # many error types; the user needs one line
            raise _one_line(path, "cannot load saved dataset (field 'data.path')", e) from None
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise DataError(
                    f"{path}: saved dataset has no split '{split}' (field 'data.hf_split'; "
                    f"it has {', '.join(sorted(ds))})"
                )
            ds = ds[split]
        return ds.shuffle(seed=_pass_seed(seed, epoch)) if seed else ds
    try:
        ds = datasets.load_dataset(path, split=split, streaming=True)
    except Exception as e:  # many error types; the user needs one line
        raise _one_line(path, "cannot stream dataset (field 'data.path')", e) from None
    return ds.shuffle(seed=_pass_seed(seed, epoch), buffer_size=SHUFFLE_BUFFER) if seed else ds


@dataclass
class StreamedPacked:
    path: str
    split: str
    text_field: str
    tokenizer: object
    seq_len: int
    seed: int = 0
    _it: Iterator[np.ndarray] | None = field(default=None, repr=False)
    _next: int = 0
    _last: tuple[int, np.ndarray] | None = field(default=None, repr=False)

    def _rows(self) -> Iterator[dict]:
        """Every row, pass after pass (a dataset shorter than the run is read again, in
        another order for a non-zero seed)."""
        for epoch in itertools.count():
            rows = iter(open_documents(self.path, self.split, self.seed, epoch))
            n = 0
            while True:
                try:
                    row = next(rows)
                except StopIteration:
                    break
                except Exception as e:  # a broken file or connection, met while reading
                    raise _one_line(
                        self.path, "cannot read dataset (field 'data.path')", e
                    ) from None
                n += 1
                yield row
            if n == 0:
                raise DataError(
                    f"{self.path}: no documents in split '{self.split}' (field 'data.path')"
                )

    def _sequences(self) -> Iterator[np.ndarray]:
        buf: list[int] = []
        eos = self.tokenizer.eos_token_id
        for k, row in enumerate(self._rows()):
            if self.text_field not in row:
                have = ", ".join(sorted(map(str, row))[:8])
                raise DataError(
                    f"{self.path}, row {k}: no field '{self.text_field}' (set data.text_field "
                    f"to one of: {have})"
                )
            buf += [
                *self.tokenizer(row[self.text_field], add_special_tokens=False)["input_ids"],
                eos,
            ]
            while len(buf) >= self.seq_len:
                yield np.asarray(buf[: self.seq_len], dtype=np.int64)
                buf = buf[self.seq_len :]

    def sequence(self, position: int) -> np.ndarray:
        if self._last is not None and self._last[0] == position:
            return self._last[1]  # asked again (the check before training, then step 0)
        if self._it is None or position < self._next:
            self._it, self._next = self._sequences(), 0
        for seq in self._it:
            self._next += 1
            if self._next - 1 == position:
                self._last = (position, seq)
                return seq
        raise DataError(f"{self.path}: stream ended before sequence {position}")
