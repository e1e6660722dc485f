"""A damaged weights file is one line naming the model folder, not a traceback."""

from __future__ import annotations

import pytest

from factdyn.errors import DataError
from factdyn.score.loading import load_model_and_tokenizer


def test_a_truncated_safetensors_file_is_a_data_error(toy_world, tmp_path):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(toy_world / "tokenizer")
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=32)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    load_model_and_tokenizer(str(tmp_path / "m"))  # sound: loads
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(DataError, match="cannot load model/tokenizer") as e:
        load_model_and_tokenizer(str(tmp_path / "m"))
    assert str(tmp_path / "m") in str(e.value) and "\n" not in str(e.value)
