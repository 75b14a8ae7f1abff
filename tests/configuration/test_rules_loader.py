"""YAML rule files fail at start with the file, the field and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from config.rules import RuleFileError, load_yaml_model

TESTDATA = Path(__file__).parent / "testdata"


class Limit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: str
    minutes: int


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    limits: list[Limit]


def test_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("name: ok\nlimits:\n  - {stage: packed, minutes: 120}\n")
    assert load_yaml_model(path, Rules).limits[0].minutes == 120


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wrong_field.yaml", "limits[0].minutes: Input should be a valid integer"),
        ("not_yaml.yaml", "line 3, column 1: not valid YAML"),
        ("empty.yaml", "(top level): file is empty"),
        ("missing.yaml", "file not found"),
    ],
)
def test_bad_files_name_file_field_and_problem(name: str, expected: str) -> None:
    with pytest.raises(RuleFileError) as caught:
        load_yaml_model(TESTDATA / name, Rules)
    message = str(caught.value)
    assert message.startswith(str(TESTDATA / name) + ": ")
    assert expected in message


def test_unknown_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("name: x\nlimits: []\nlimitz: []\n")
    with pytest.raises(RuleFileError, match=r"limitz: Extra inputs are not permitted"):
        load_yaml_model(path, Rules)
