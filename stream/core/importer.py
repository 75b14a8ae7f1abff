"""Mapping rows of an OMS/WMS/TMS export onto the event contract (pure).

An export (CSV or JSON Lines) is described by a YAML mapping file (the shipped ones are
``config/import_mappings/*.yaml``; ``olist.yaml`` documents every key), loaded with :func:`load_mapping` (through
``config.rules.load_yaml_model``, so a bad file names the field and the problem). Each
event field is filled from one of

- ``column``: a column (CSV header or JSON key; ``a.b`` reaches into nested JSON),
- ``constant``: a fixed value,
- ``template``: a Python format string over the row's columns (``"olist-{order_id}-{event_seq}"``),

optionally translated by ``map`` (source vocabulary -> our values; for ``status`` the
values must be contract statuses, or ``skip`` to leave such rows out), used only on rows
that meet ``when`` (a column's value is one of the given ones; other rows leave the field
empty), with ``default`` for empty values, and for times a ``format`` (``strptime``, or ``epoch_s`` / ``epoch_ms``;
ISO 8601 when absent) and a ``timezone`` (IANA) for times without an offset.

:func:`map_row` turns one row into a validated :class:`~stream.contract.OrderEvent`, a
:class:`RowRejection` naming the row number and every problem (conversion and contract
validation alike), or :class:`Skipped`. No I/O and no clock: ``now`` comes in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.rules import load_yaml_model
from stream.contract import OrderEvent, Problem, Rejection, Status, parse_event_obj

SKIP = "skip"
TIME_FIELDS = frozenset({"event_time", "promised_by"})
#: Event fields a mapping may fill (``attributes`` has its own section).
EVENT_FIELDS = frozenset(OrderEvent.model_fields) - {"v", "attributes"}
REQUIRED_FIELDS = frozenset({"event_id", "order_id", "sku", "status", "event_time", "source"})

Scalar = str | int | float | bool


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai)") from None


class Condition(BaseModel):
    """``when:``: the row's ``column`` has one of the values ``equals`` (one or a list)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    equals: Scalar | list[Scalar]

    def holds(self, row: Mapping[str, Any]) -> bool:
        try:
            value = _lookup(row, self.column)
        except _Missing:
            return False
        wanted = self.equals if isinstance(self.equals, list) else [self.equals]
        return str(value).strip() in {str(w) for w in wanted}


class FieldSpec(BaseModel):
    """Where one event field comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str | None = None
    constant: Scalar | None = None
    template: str | None = None
    #: Source value -> value to use (``skip``: leave the row out).
    map: dict[str, Scalar] | None = None
    #: Used when the source value is empty or missing.
    default: Scalar | None = None
    #: Times: a ``strptime`` format, or ``epoch_s`` / ``epoch_ms``; ISO 8601 when absent.
    format: str | None = None
    #: Times without an offset are in this zone (overrides the mapping's ``timezone``).
    timezone: str | None = None
    #: Only rows meeting this condition give the field a value (others: ``default``).
    when: Condition | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        given = [name for name in ("column", "constant", "template") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of column, constant, template (got {', '.join(given) or 'none'})")
        if self.timezone is not None:
            _zone(self.timezone)
        return self


class ImportMapping(BaseModel):
    """A YAML import mapping (see ``config/import_mappings/olist.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``None``: from the file name (``.csv``; ``.jsonl`` / ``.ndjson``).
    format: Literal["csv", "jsonl"] | None = None
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    #: Zone of times that carry no offset.
    timezone: str = "UTC"
    #: Event field -> spec; a plain string is shorthand for ``{column: ...}``.
    fields: dict[str, FieldSpec]
    attributes: dict[str, FieldSpec] = Field(default_factory=dict)

    @field_validator("fields", "attributes", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: {"column": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _zone(value)
        return value

    @model_validator(mode="after")
    def _fields(self) -> ImportMapping:
        unknown = sorted(set(self.fields) - EVENT_FIELDS)
        if unknown:
            raise ValueError(
                f"fields: {', '.join(unknown)} not in the event contract (known: {', '.join(sorted(EVENT_FIELDS))})"
            )
        missing = sorted(REQUIRED_FIELDS - set(self.fields))
        if missing:
            raise ValueError(f"fields: {', '.join(missing)} must be mapped")
        status = self.fields["status"]
        statuses = {s.value for s in Status} | {SKIP}
        values = list((status.map or {}).values())
        if status.constant is not None:
            values.append(status.constant)
        bad = sorted({str(v) for v in values if v not in statuses})
        if bad:
            raise ValueError(
                f"fields.status: {', '.join(bad)} are not statuses (use one of {', '.join(sorted(statuses))})"
            )
        return self

    def file_format(self, path: Path) -> Literal["csv", "jsonl"]:
        if self.format is not None:
            return self.format
        return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"


def load_mapping(path: Path) -> ImportMapping:
    """Load a mapping file; raises ``config.rules.RuleFileError`` naming field and problem."""
    return load_yaml_model(path, ImportMapping)


@dataclass(frozen=True)
class RowRejection:
    row: int
    problems: tuple[Problem, ...]

    def summary(self) -> str:
        return "; ".join(f"{p.field}: {p.problem}" for p in self.problems)


@dataclass(frozen=True)
class Skipped:
    row: int
    reason: str


class _Missing(Exception):
    pass


def _lookup(row: Mapping[str, Any], column: str) -> Any:
    if column in row:
        return row[column]
    value: Any = row
    for part in column.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise _Missing(column)
        value = value[part]
    return value


class _Columns(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        raise _Missing(key)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _parse_time(value: Any, spec: FieldSpec, default_zone: str) -> str:
    """An ISO 8601 string with offset."""
    if spec.format in ("epoch_s", "epoch_ms"):
        seconds = float(value) / (1000 if spec.format == "epoch_ms" else 1)
        return datetime.fromtimestamp(seconds, tz=UTC).isoformat()
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        try:
            parsed = datetime.strptime(text, spec.format) if spec.format else datetime.fromisoformat(text)
        except ValueError:
            expected = f"format {spec.format!r}" if spec.format else "ISO 8601"
            raise ValueError(f"{text!r} is not a time in {expected}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_zone(spec.timezone or default_zone))
    return parsed.isoformat()


def _value(spec: FieldSpec, row: Mapping[str, Any]) -> Any:
    if spec.when is not None and not spec.when.holds(row):
        return spec.default
    if spec.constant is not None:
        value: Any = spec.constant
    elif spec.template is not None:
        value = spec.template.format_map(_Columns(row))
    else:
        assert spec.column is not None
        value = _lookup(row, spec.column)
    if _empty(value):
        return spec.default
    if spec.map is not None:
        key = str(value).strip()
        if key not in spec.map:
            raise ValueError(f"unknown value {key!r} (not in the mapping)")
        value = spec.map[key]
    return value.strip() if isinstance(value, str) else value


def map_row(
    row: Mapping[str, Any], number: int, mapping: ImportMapping, now: datetime
) -> OrderEvent | RowRejection | Skipped:
    """One row of the export -> a validated event, a rejection with every problem, or a skip."""
    obj: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, spec in mapping.fields.items():
        try:
            value = _value(spec, row)
            if value is not None and name in TIME_FIELDS:
                value = _parse_time(value, spec, mapping.timezone)
        except _Missing as exc:
            problems.append(Problem(name, f"column {exc.args[0]!r} is not in the row"))
            continue
        except ValueError as exc:
            problems.append(Problem(name, str(exc)))
            continue
        if name == "status" and value == SKIP:
            return Skipped(number, f"status {_raw_status(row, spec)!r} is mapped to skip")
        if value is not None:
            obj[name] = value
    attributes: dict[str, Any] = {}
    for name, spec in mapping.attributes.items():
        try:
            value = _value(spec, row)
        except (_Missing, ValueError) as exc:
            problems.append(Problem(f"attributes.{name}", str(exc)))
            continue
        if value is not None:
            attributes[name] = value
    if attributes:
        obj["attributes"] = attributes
    if problems:
        return RowRejection(number, tuple(problems))
    result = parse_event_obj(obj, now)
    if isinstance(result, Rejection):
        return RowRejection(number, result.problems or (Problem("(event)", result.code.value),))
    return result


def _raw_status(row: Mapping[str, Any], spec: FieldSpec) -> Any:
    try:
        return _lookup(row, spec.column) if spec.column else spec.constant
    except _Missing:
        return None
