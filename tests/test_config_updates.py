"""Typed updates of a validated configuration: what the program changes (the demo's inputs, a
replicate's data block, the ``train`` shortcuts) is validated as a file is, without text."""

import pytest

from factdyn.config import BaseConfig, RunConfig, load_config, updated
from factdyn.errors import DataError


def test_an_update_changes_the_fields_it_names_and_nothing_else():
    cfg = load_config("olmo-1b")
    new = updated(cfg, data={"start": 7, "seed": 2}, model={"name": "local/model"})
    assert (new.data.start, new.data.seed, new.model.name) == (7, 2, "local/model")
    assert new.data.seq_len == cfg.data.seq_len and new.optim == cfg.optim
    assert cfg.data.start != 7 and cfg.model.name == "allenai/OLMo-1B-hf"  # a copy


def test_an_update_equals_the_same_change_given_with_set():
    sets = ["data.path=/w", "model.name=/m", "train.steps=50", "optim.betas=[0.8, 0.9]"]
    given = updated(
        RunConfig(),
        data={"path": "/w"},
        model={"name": "/m"},
        train={"steps": 50},
        optim={"betas": (0.8, 0.9)},
    )
    assert given == load_config(None, sets)


def test_a_bad_value_is_one_line_naming_the_option_and_the_field():
    with pytest.raises(DataError) as e:
        updated(RunConfig(), "--steps", train={"steps": 0})
    assert str(e.value) == (
        "--steps, field 'train.steps': Input should be greater than or equal to 1"
    )
    with pytest.raises(DataError, match=r"field 'data.pth': unknown key; did you mean 'data.path'"):
        updated(RunConfig(), data={"pth": "/w"})
    with pytest.raises(DataError, match=r"field 'config': .*multiple of train.micro_batch_size"):
        updated(RunConfig(), train={"batch_size": 6, "micro_batch_size": 4})


def test_values_are_typed_not_read_as_text():
    assert updated(RunConfig(), model={"name": "1e-3"}).model.name == "1e-3"  # a name stays one
    with pytest.raises(DataError, match=r"field 'train.steps': Input should be a valid integer"):
        updated(RunConfig(), train={"steps": "50"})


def test_the_base_models_settings_update_the_same_way():
    base = updated(BaseConfig(), "--quick", steps=120, lr=3e-3)
    assert (base.steps, base.lr, base.layers) == (120, 3e-3, BaseConfig().layers)
    with pytest.raises(DataError, match=r"^--quick, field 'config': .*multiple of heads"):
        updated(BaseConfig(), "--quick", hidden_size=30)
