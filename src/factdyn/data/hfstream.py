"""Any Hugging Face dataset, streamed, tokenized and packed into sequences in stream order.

A stream cannot seek, so position ``p`` is reached by reading forward (each rank reads its
own rows in increasing order); a resumed run re-reads from the start up to its position,
which is deterministic and needs no extra state in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from factdyn.errors import DataError


@dataclass
class StreamedPacked:
    path: str
    split: str
    text_field: str
    tokenizer: object
    seq_len: int
    _it: Iterator[np.ndarray] | None = field(default=None, repr=False)
    _next: int = 0

    def _sequences(self) -> Iterator[np.ndarray]:
        import datasets

        try:
            ds = datasets.load_dataset(self.path, split=self.split, streaming=True)
        except Exception as e:  # many error types; the user needs one line
            raise DataError(
                f"{self.path}: cannot stream dataset ({type(e).__name__}: {e})".splitlines()[0]
            ) from None
        buf: list[int] = []
        eos = self.tokenizer.eos_token_id
        for k, row in enumerate(ds):
            if self.text_field not in row:
                raise DataError(f"{self.path}, row {k}, field '{self.text_field}': missing")
            buf += [
                *self.tokenizer(row[self.text_field], add_special_tokens=False)["input_ids"],
                eos,
            ]
            while len(buf) >= self.seq_len:
                yield np.asarray(buf[: self.seq_len], dtype=np.int64)
                buf = buf[self.seq_len :]

    def sequence(self, position: int) -> np.ndarray:
        if self._it is None or position < self._next:
            self._it, self._next = self._sequences(), 0
        for seq in self._it:
            self._next += 1
            if self._next - 1 == position:
                return seq
        raise DataError(f"{self.path}: stream ended before sequence {position}")
