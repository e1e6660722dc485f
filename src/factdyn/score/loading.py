"""Load any Hugging Face causal LM and its tokenizer: a local path or a hub id with revision.

Tests and the offline demo pass local directories through exactly this code path.
"""

from __future__ import annotations

import time

import torch
from safetensors import SafetensorError

from factdyn import progress
from factdyn.errors import DataError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def load_model_and_tokenizer(
    name: str, revision: str | None = None, dtype: str = "fp32", device: str = "cpu"
):
    """(model, tokenizer); the tokenizer gets a pad token (its EOS) if it has none. Says so
    (a phase line): loading a large model is the longest silence of a run's start, and
    transformers' own progress bars are kept out of factdyn's."""
    progress.quiet_other_bars()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    at = f"{name}@{revision}" if revision else name
    progress.phase(f"loading model {at}")
    t0 = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
        model = AutoModelForCausalLM.from_pretrained(name, revision=revision, dtype=DTYPES[dtype])
    except (OSError, ValueError, SafetensorError) as e:  # missing, unreadable or damaged files
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise DataError(f"{name}: cannot load model/tokenizer ({reason})") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = model.to(device)
    n = sum(p.numel() for p in model.parameters())
    progress.debug(
        f"loaded {at}: {n:,} parameters, {dtype} on {device}, in {time.perf_counter() - t0:.1f} s"
    )
    return model, tokenizer
