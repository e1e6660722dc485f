"""Build the background data source named by a config (world corpus, local text, ...)."""

from __future__ import annotations

from pathlib import Path

from factdyn.config import DataConfig
from factdyn.data.corpus import PackedTokens, SequenceSource, cached_tokens, corpus_files
from factdyn.errors import DataError


def build_source(cfg: DataConfig, tokenizer) -> SequenceSource:
    """The resumable sequence stream for ``cfg`` (positions are global sequence indices).
    ``data.seed`` orders every source: ``world``/``text`` shuffle their packed sequences once
    per epoch with it; ``hf`` and ``olmo`` read their own order at seed 0 and a reproducible
    shuffle of it at any other seed (:mod:`~factdyn.data.hfstream`,
    :mod:`~factdyn.data.olmo`)."""
    if cfg.path is None and cfg.source != "olmo":
        raise DataError("config, field 'data.path': required for this data.source")
    if cfg.source in ("world", "text"):
        path = Path(cfg.path)
        if not path.exists():
            raise DataError(f"{path}: no such corpus (field 'data.path')")
        files = corpus_files(path)
        tokens = cached_tokens(files, tokenizer, text_field=cfg.text_field)
        return PackedTokens(tokens, cfg.seq_len, cfg.seed)
    if cfg.source == "hf":
        from factdyn.data.hfstream import StreamedPacked

        return StreamedPacked(
            cfg.path, cfg.hf_split, cfg.text_field, tokenizer, cfg.seq_len, cfg.seed
        )
    from factdyn.data.olmo import open_olmo

    return open_olmo(cfg.files or [], cfg.path, cfg.seq_len, cfg.dtype, cfg.seed)


def data_start(cfg: DataConfig, base_state: dict) -> int:
    """The data position of step 0: ``data.start``, else where the base's pretraining stopped
    (a factdyn base records it in its state.json), else 0."""
    if cfg.start is not None:
        return cfg.start
    return int(base_state.get("data_position", 0))
