"""A stand-in tokenizer with a known mapping, shared by the data tests."""

from __future__ import annotations


class CharTok:
    """One id per character, EOS = 0: the stream a source must produce is known exactly."""

    eos_token_id = 0

    def __call__(self, text, add_special_tokens=False):
        if isinstance(text, list):
            return {"input_ids": [[ord(c) for c in t] for t in text]}
        return {"input_ids": [ord(c) for c in text]}

    def __len__(self):
        return 256

    def get_vocab(self):
        return {chr(i): i for i in range(256)}
