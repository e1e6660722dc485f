"""What the command line tells a user about the configuration and itself: ``--print-config
--explain``, "did you mean" for an unknown key or command, ``--set KEY VALUE`` (a space for
the ``=``), ``--version``."""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from factdyn.cli import app
from factdyn.cli.app import join_set_values
from factdyn.config import BaseConfig, RunConfig, _model_in, load_config


def _fields(model: type[BaseModel], prefix: str = ""):
    """(dotted name, field) of every field, nested models' fields included."""
    for name, field in model.model_fields.items():
        yield f"{prefix}{name}", field
        inner = _model_in(field.annotation)
        if inner is not None:
            yield from _fields(inner, f"{prefix}{name}.")


def _invoke(*argv: str):
    result = CliRunner().invoke(app, list(argv))
    return result


@pytest.mark.parametrize("model", [RunConfig, BaseConfig])
def test_every_field_has_a_description_for_users(model):
    for name, field in _fields(model):
        if _model_in(field.annotation) is not None and field.description is None:
            continue  # a section of RunConfig: its fields are described
        text = field.description or ""
        assert len(text) > 8, f"{name}: no description"
        # notes for the project's authors (docs rounds, the spec, benchmark files) are not help
        assert not re.search(r"docs/|§|round \d|benchmarks/|bench_", text), (name, text)


def _comments(text: str) -> dict[str, str]:
    """``section.key`` -> the comment lines just above it, joined."""
    out, section, pending = {}, "", []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            pending.append(line.strip().lstrip("#").strip())
            continue
        m = re.match(r"(  )?(\w+):", line)
        if m and m.group(1):
            out[f"{section}.{m.group(2)}"] = " ".join(pending)
        elif m:
            section = m.group(2)
        pending = []
    return out


def test_print_config_explain_comments_each_field_with_description_type_and_default(tmp_path):
    result = _invoke("train", "--print-config", "--explain", "--set", "optim.lr=1e-3")
    assert result.exit_code == 0, result.output
    text = result.stdout
    comments = _comments(text)
    for section, sfield in RunConfig.model_fields.items():
        for key, field in sfield.annotation.model_fields.items():
            block = comments[f"{section}.{key}"]
            assert " ".join(field.description.split()[:3]) in block, (section, key, block)
            assert re.search(r" \[.+; (default .+|required)\]$", block), (section, key, block)
    # types and defaults in words
    assert comments["optim.lr"].endswith("[number > 0 or null; default null]")
    assert comments["train.steps"].endswith("[integer ≥ 1; default 250]")
    assert comments["model.dtype"].endswith("[fp32 | bf16; default fp32]")
    # the fields of scenarios and of the model's shape are explained too
    assert "name: the scenario's name" in comments["injection.scenarios"]
    assert (
        "count: injections of each item [integer ≥ 1; required]" in comments["injection.scenarios"]
    )
    assert "hidden_size: model width" in comments["model.shape"]
    # the explained YAML is still a config file: it loads back to what was printed
    (tmp_path / "explained.yaml").write_text(text)
    cfg = load_config(tmp_path / "explained.yaml")
    assert cfg == load_config(None, ["optim.lr=1e-3"])
    assert cfg.optim.lr == 1e-3


def test_pretrain_print_config_explain():
    result = _invoke("pretrain", "--print-config", "--explain")
    assert result.exit_code == 0, result.output
    assert "# updates of the warmup + decay schedule [integer ≥ 1; default 450]" in result.stdout
    assert yaml.safe_load(result.stdout) == BaseConfig().model_dump(mode="json")


@pytest.mark.parametrize(
    "argv, line",
    [
        (
            ["train", "--print-config", "--set", "optim.lrr=1e-3"],
            "--set optim.lrr=1e-3, field 'optim.lrr': unknown key; did you mean 'optim.lr'?",
        ),
        (
            ["train", "--print-config", "--set", "optm.lr=1e-3"],
            "--set optm.lr=1e-3, field 'optm': unknown section; did you mean 'optim'?",
        ),
        (
            [
                "train",
                "--print-config",
                "--set",
                "injection.scenarios=[{name: a, count: 1, intervl: 2}]",
            ],
            "field 'injection.scenarios.0.intervl': unknown key; did you mean "
            "'injection.scenarios.0.interval'?",
        ),
        (
            ["pretrain", "--set", "setle_steps=100"],
            "--set setle_steps=100, field 'setle_steps': unknown key; did you mean 'settle_steps'?",
        ),
    ],
)
def test_an_unknown_key_is_one_line_with_did_you_mean(exits_2, argv, line):
    err = exits_2(argv)
    assert line in err
    assert "Extra inputs" not in err


def test_an_unknown_key_in_a_file_names_the_file_and_lists_the_keys_when_none_is_close(
    exits_2, tmp_path
):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text("train:\n  stesp: 20\n")
    err = exits_2(["train", str(cfg), "--print-config"])
    assert err.startswith(
        f"factdyn: error: {cfg}, field 'train.stesp': unknown key; did you mean 'train.steps'?"
    )
    cfg.write_text("eval:\n  zzz: 1\n")
    err = exits_2(["train", str(cfg), "--print-config"])
    assert f"{cfg}, field 'eval.zzz': unknown key (eval has: schedule, window," in err


@pytest.mark.parametrize(
    "argv, suggestion",
    [(["anlyze", "runs/a"], "'analyze'"), (["data", "valdate", "x.json"], "'validate'")],
)
def test_an_unknown_command_says_did_you_mean(argv, suggestion):
    result = _invoke(*argv)
    assert result.exit_code == 2
    assert f"Did you mean {suggestion}?" in result.output


@pytest.mark.parametrize(
    "sets, lr, steps",
    [
        (["--set", "optim.lr", "1e-3"], 1e-3, 250),  # a space for the =
        (["-s", "optim.lr", "2e-3", "--set", "train.steps", "7"], 2e-3, 7),
        (["--set=optim.lr", "3e-3"], 3e-3, 250),
        (["--set", "optim.lr=4e-3", "--steps", "9"], 4e-3, 9),  # the documented form, unchanged
    ],
)
def test_set_key_value_with_a_space_is_read_as_key_equals_value(sets, lr, steps):
    result = _invoke("train", *sets, "--print-config")
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load(result.stdout)
    assert (cfg["optim"]["lr"], cfg["train"]["steps"]) == (lr, steps)


def test_set_with_a_space_keeps_the_config_argument_and_negative_values(exits_2):
    result = _invoke("train", "olmo-1b", "--set", "optim.lr", "1e-3", "--print-config")
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load(result.stdout)
    assert cfg["optim"]["lr"] == 1e-3 and cfg["model"]["name"] == "allenai/OLMo-1B-hf"
    # a negative number is a value, not an option; the field's own check refuses it
    err = exits_2(["train", "--set", "optim.lr", "-1", "--print-config"])
    assert "--set optim.lr=-1, field 'optim.lr': Input should be greater than 0" in err
    # with no value at all the refusal shows the form
    err = exits_2(["train", "--print-config", "--set", "optim.lr"])
    assert "expected section.key=value" in err and "--set optim.lr=1e-3" in err


def test_join_set_values_leaves_everything_else_alone():
    argv = ["train", "cfg.yaml", "--out", "r", "--set", "a.b=1", "--steps", "3", "--", "-s"]
    assert join_set_values(argv) == argv
    assert join_set_values(["--set", "a.b", "--out", "r"]) == ["--set", "a.b", "--out", "r"]


def test_version():
    result = _invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"factdyn {version('factdyn')}"


def test_did_you_mean_does_not_depend_on_typers_own_suggestions():
    """Older typer (and click) say no more than "No such command": factdyn's group adds it."""
    import typer.main

    cmd = typer.main.get_command(app)
    cmd.suggest_commands = False  # typer >= 0.20's own suggestion, switched off
    with pytest.raises(Exception, match=r"No such command 'anlyze'\. Did you mean 'analyze'\?"):
        cmd.main(["anlyze"], standalone_mode=False)
