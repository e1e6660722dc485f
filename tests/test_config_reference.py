"""docs/config.md is the configuration reference generated from the fields' own descriptions:
it must say what the code says, and read as a manual."""

import re
from pathlib import Path

from pydantic import Field, create_model

from factdyn.config import EvalConfig, RunConfig, _model_in
from factdyn.config.reference import COMMAND, main, reference

PAGE = Path(__file__).parents[1] / "docs" / "config.md"


def _fields(model, prefix=""):
    """Every field of ``model`` and of the models its fields hold, as (dotted name, field)."""
    for name, field in model.model_fields.items():
        yield prefix + name, field
        inner = _model_in(field.annotation)
        if inner is not None:
            yield from _fields(inner, f"{prefix}{name}.")


def test_the_page_is_current():
    assert PAGE.read_text(encoding="utf-8") == reference(), (
        f"docs/config.md differs from the config's fields: run `{COMMAND}`"
    )


def test_a_field_added_without_regenerating_the_page_is_caught():
    planted = create_model(
        "EvalConfig",
        __base__=EvalConfig,
        planted_knob=(int, Field(3, ge=1, description="a field planted by the test")),
    )
    run = create_model("RunConfig", __base__=RunConfig, eval=(planted, planted()))
    page = reference(run)
    assert page != reference()
    assert "| `eval.planted_knob` | integer ≥ 1 | `3` | a field planted by the test |" in page


def test_every_field_has_a_description_and_a_row():
    page = PAGE.read_text(encoding="utf-8")
    for section, part in RunConfig.model_fields.items():
        for name, field in _fields(part.annotation, f"{section}."):
            assert field.description, f"{name} has no description"
            row = name if name.count(".") == 1 else name.rpartition(".")[2]  # model.shape.heads
            assert f"| `{row}` |" in page, name


def test_the_descriptions_read_as_a_manual():
    page = reference()
    for words in ("§", r"\bround \d", "tiny-regime", "notebook"):
        assert not re.search(words, page), words


def test_the_command_writes_the_page(capsysbinary):
    main()
    assert capsysbinary.readouterr().out.decode("utf-8") == reference()
