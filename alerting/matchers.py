"""Label matchers in Alertmanager's notation: ``kind="hub_stall"``, ``region=~"east|north"``.

Used by routes, inhibition rules and silences. Regular expressions are fully anchored, as
in Alertmanager, so ``region=~"east"`` does not match ``northeast``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_SYNTAX = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


class MatchOp(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True)
class Matcher:
    """One condition on one label. A missing label matches as the empty string."""

    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if self.op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"matcher {self}: bad regular expression: {exc}") from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op is MatchOp.EQUAL:
            return actual == self.value
        if self.op is MatchOp.NOT_EQUAL:
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op is MatchOp.REGEX else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op.value}"{escaped}"'


def parse_matcher(text: object) -> Matcher:
    """Parse ``name<op>"value"``; raise ``ValueError`` naming what is wrong."""
    if isinstance(text, Matcher):
        return text
    if not isinstance(text, str):
        raise ValueError(f'expected a matcher string like kind="hub_stall", got {type(text).__name__}')
    found = _SYNTAX.match(text)
    if found is None:
        raise ValueError(f'bad matcher {text!r}: expected name="value", name!="value", name=~"regex" or name!~"regex"')
    name, op, raw = found.groups()
    value = re.sub(r"\\(.)", r"\1", raw)
    return Matcher(name, MatchOp(op), value)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


#: A pydantic field type: a matcher string in files, a :class:`Matcher` in code.
MatcherField = Annotated[Matcher, BeforeValidator(parse_matcher), PlainSerializer(str, return_type=str)]
