"""Loading YAML rule files into typed, validated models.

Every rule file under ``config/`` (SLA rules, alert policy, geofences, import mappings)
is loaded with :func:`load_yaml_model`, so a bad file fails at start with one message that
names the file, the field and the problem::

    config/sla.yaml: stages.packed.deadline: Input should be a valid duration
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class RuleFileError(ValueError):
    """A rule file is missing, not YAML, or does not match its schema."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + part)
    return "".join(parts) or "(top level)"


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, translating I/O and syntax errors to :class:`RuleFileError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RuleFileError(path, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(path, [f"cannot read: {exc}"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RuleFileError(path, [f"{where}not valid YAML: {problem}"]) from None


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Load ``path`` and validate it against ``model``; errors name file, field and problem."""
    data = read_yaml(path)
    if data is None:
        raise RuleFileError(path, ["(top level): file is empty"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_field_path(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise RuleFileError(path, problems) from None
