"""A byte-level BPE for the offline world, trained with Hugging Face ``tokenizers`` and saved
so that ``transformers.AutoTokenizer.from_pretrained`` loads it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from factdyn.data.corpus import iter_documents

EOS = "<|endoftext|>"


def _capped(paths: Sequence[Path], max_bytes: int) -> Iterator[str]:
    seen = 0
    for doc in iter_documents(paths):
        yield doc
        seen += len(doc)
        if seen >= max_bytes:
            return


def train_bpe(
    paths: Sequence[Path], out: Path, vocab_size: int = 2048, max_bytes: int = 8_000_000
) -> Path:
    """Train on the first ``max_bytes`` of the corpus (merges settle long before that)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_capped(paths, max_bytes), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS)
    fast.save_pretrained(out)
    return out
