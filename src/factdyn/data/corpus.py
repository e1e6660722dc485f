"""Background pretraining data as a resumable stream of fixed-length token sequences.

A source maps a *position* (the global index of a sequence in the training stream) to its
tokens. Step ``t`` of a run with global batch ``B`` reads positions ``start + t*B ...``, so
resuming, sharding across ranks and "continue where the base model stopped" are all just
arithmetic on positions: nothing about the stream lives in memory that a checkpoint could miss.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from factdyn import progress
from factdyn.errors import DataError
from factdyn.files import atomic_file


class SequenceSource(Protocol):
    seq_len: int

    def sequence(self, position: int) -> np.ndarray:
        """The ``seq_len`` token ids at a stream position."""
        ...


@dataclass
class PackedTokens:
    """Documents joined by EOS, cut into non-overlapping sequences, shuffled once per epoch."""

    tokens: np.ndarray
    seq_len: int
    seed: int = 0
    _perms: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.n_sequences = len(self.tokens) // self.seq_len
        if self.n_sequences == 0:
            raise DataError(
                f"corpus: {len(self.tokens)} tokens, fewer than one sequence of {self.seq_len}"
            )

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms = {
                epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n_sequences)
            }
        return self._perms[epoch]

    def sequence(self, position: int) -> np.ndarray:
        epoch, i = divmod(position, self.n_sequences)
        j = int(self._perm(epoch)[i])
        return np.asarray(self.tokens[j * self.seq_len : (j + 1) * self.seq_len], dtype=np.int64)


def iter_documents(paths: Iterable[Path], text_field: str = "text") -> Iterator[str]:
    """Texts from ``.jsonl`` (one ``{"text": ...}`` per line) or plain ``.txt`` files."""
    for path in paths:
        if path.suffix == ".jsonl":
            with path.open(encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise DataError(f"{path}, line {lineno}: not JSON ({e.msg})") from None
                    if not isinstance(row, dict):
                        raise DataError(f"{path}, line {lineno}: not a JSON object")
                    doc = row.get(text_field)
                    if not isinstance(doc, str):
                        what = "no field" if doc is None else "no text in field"
                        have = ", ".join(repr(k) for k in list(row)[:8])
                        raise DataError(
                            f"{path}, line {lineno}: {what} '{text_field}' (set data.text_field "
                            f"to the field that holds the text; this line has {have or 'none'})"
                        )
                    yield doc
        else:
            try:
                yield path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}: not UTF-8") from None


def tokenize_documents(tokenizer, docs: Iterable[str], batch: int = 1000) -> np.ndarray:
    """Token ids of every document followed by EOS, as one flat array (uint16 when it fits)."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise DataError("tokenizer: no eos_token; factdyn separates documents with it")
    chunks: list[np.ndarray] = []
    buf: list[str] = []
    # shown on a terminal only (None: tqdm's "disable on non-TTY"), as factdyn's phase lines
    bar = tqdm(
        desc="tokenizing corpus",
        unit=" docs",
        leave=False,
        disable=True if progress.quiet() else None,
    )

    def flush() -> None:
        for ids in tokenizer(buf, add_special_tokens=False)["input_ids"]:
            chunks.append(np.asarray([*ids, eos], dtype=np.int64))
        bar.update(len(buf))
        buf.clear()

    for doc in docs:
        buf.append(doc)
        if len(buf) >= batch:
            flush()
    if buf:
        flush()
    bar.close()
    tokens = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max + 1 else np.uint32
    return tokens.astype(dtype)


def corpus_files(path: Path) -> list[Path]:
    """The corpus files of a world dir, a corpus dir, or a single file."""
    if path.is_file():
        return [path]
    for d in (path / "corpus", path):
        files = sorted([*d.glob("*.jsonl"), *d.glob("*.txt")])
        if files:
            return files
    raise DataError(f"{path}: no corpus files (*.jsonl or *.txt)")


def token_cache_dir() -> Path:
    """Where tokenized corpora are kept: factdyn's cache, never beside the input (a user's
    world or text folder is only read, and may be read-only)."""
    from factdyn.cache import root

    return root() / "tokens"


# Bump when the tokenized layout changes (documents joined by EOS, no other special tokens).
_TOKENS_FORMAT = 2


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    """A digest of everything in a tokenizer that changes :func:`tokenize_documents`' output:
    a fast tokenizer's full serialization (vocabulary, merges, normalizer, pre-tokenizer,
    added tokens), or for a slow one its vocabulary, settings, added tokens and the contents
    of its vocabulary files; and the EOS id that separates documents."""
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
        kwargs = getattr(tokenizer, "init_kwargs", None) or {}
        h.update(json.dumps(kwargs, sort_keys=True, default=str).encode())
        for value in kwargs.values():  # e.g. a sentencepiece model: its scores are no vocab
            if isinstance(value, (str, Path)) and len(str(value)) < 4096:
                try:
                    if Path(value).is_file():
                        h.update(_file_digest(Path(value)).encode())
                except (OSError, ValueError):  # not a path after all
                    pass
        added = getattr(tokenizer, "added_tokens_decoder", None) or {}
        h.update(json.dumps({str(k): str(v) for k, v in added.items()}, sort_keys=True).encode())
    h.update(f"eos={tokenizer.eos_token_id};n={len(tokenizer)}".encode())
    return h.hexdigest()


def tokens_key(files: list[Path], tokenizer, text_field: str = "text") -> str:
    """The cache key of a tokenized corpus: the files (path, size, modification time), the
    JSON field read from ``.jsonl`` files and the tokenizer's fingerprint."""
    h = hashlib.sha256(f"factdyn-tokens-v{_TOKENS_FORMAT}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    h.update(f"text_field={text_field}\n".encode())
    h.update(tokenizer_fingerprint(tokenizer).encode())
    return h.hexdigest()[:24]


def cached_tokens(
    files: list[Path], tokenizer, cache_dir: Path | None = None, text_field: str = "text"
) -> np.ndarray:
    """Tokenize once per (files, text field, tokenizer) and memory-map the cached array
    afterwards (:func:`tokens_key`); when the cache cannot be written (read-only, full) the
    tokens are used from memory."""
    cache_dir = token_cache_dir() if cache_dir is None else cache_dir
    cache = cache_dir / f"tokens-{tokens_key(files, tokenizer, text_field)}.npy"
    if not cache.is_file():
        tokens = tokenize_documents(tokenizer, iter_documents(files, text_field))
        try:
            with atomic_file(cache) as tmp, open(tmp, "wb") as f:
                np.save(f, tokens)
        except OSError:
            return tokens
    return np.load(cache, mmap_mode="r")
