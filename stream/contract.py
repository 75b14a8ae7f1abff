"""The SKU-level event contract (schema version 1) and its validation.

One event says: this SKU line of this order reached this status at this time, here,
seen by this system. JSON on the wire, one event per Kafka record, keyed by ``order_id``.

Validation is strict and pure: :func:`validate_event` takes the raw bytes and ``now`` and
returns either an :class:`OrderEvent` or a :class:`Rejection` whose reasons name each
field and problem. Nothing here touches Kafka or the clock.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Final = 1

#: Largest accepted encoded event. Kafka's own limit is far higher; this keeps state small.
MAX_EVENT_BYTES = 8 * 1024

#: Oldest and newest event times accepted at all. Times a little in the future are
#: accepted and flagged as data quality (a scanner clock drifting), not rejected.
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE_SKEW = timedelta(days=1)


class Status(StrEnum):
    """The fixed status vocabulary of a SKU line."""

    PAID = "paid"
    BACKORDERED = "backordered"
    PICKED = "picked"
    PACKED = "packed"
    OUTBOUND_SCAN = "outbound_scan"
    LINEHAUL = "linehaul"
    HUB_ARRIVAL = "hub_arrival"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERY_FAILED = "delivery_failed"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURN_REQUESTED = "return_requested"
    RETURNED = "returned"
    CANCELLED = "cancelled"


S = Status

#: Progress rank: a later event never moves a SKU to a lower rank. ``exception`` keeps the
#: rank of the status it interrupted (see ``stream.core.lifecycle``).
STAGE_RANK: dict[Status, int] = {
    S.PAID: 0,
    S.BACKORDERED: 1,
    S.PICKED: 2,
    S.PACKED: 3,
    S.OUTBOUND_SCAN: 4,
    S.LINEHAUL: 5,
    S.HUB_ARRIVAL: 5,
    S.OUT_FOR_DELIVERY: 6,
    S.DELIVERY_FAILED: 6,
    S.DELIVERED: 7,
    S.RETURN_REQUESTED: 8,
    S.RETURNED: 9,
    S.CANCELLED: 10,
    S.EXCEPTION: -1,
}

_IN_TRANSIT = {S.LINEHAUL, S.HUB_ARRIVAL}

#: Legal transitions: from the current status to the statuses that may follow it.
#: Missed scans are common, so a few forward skips are legal (packed straight to
#: linehaul); skipping the last mile is not (delivered needs out_for_delivery first).
#: ``exception`` may follow any non-terminal status, and after an exception the SKU
#: may resume with any status the interrupted one allowed.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.PAID: frozenset({S.BACKORDERED, S.PICKED, S.PACKED, S.CANCELLED}),
    S.BACKORDERED: frozenset({S.PICKED, S.PACKED, S.CANCELLED}),
    S.PICKED: frozenset({S.PACKED, S.OUTBOUND_SCAN, S.CANCELLED}),
    S.PACKED: frozenset({S.OUTBOUND_SCAN, S.LINEHAUL, S.CANCELLED}),
    S.OUTBOUND_SCAN: frozenset({S.LINEHAUL, S.HUB_ARRIVAL}),
    S.LINEHAUL: frozenset({S.HUB_ARRIVAL, S.LINEHAUL, S.OUT_FOR_DELIVERY}),
    S.HUB_ARRIVAL: frozenset({S.LINEHAUL, S.HUB_ARRIVAL, S.OUT_FOR_DELIVERY}),
    # Repeated out_for_delivery events are the courier's position pings on the round.
    S.OUT_FOR_DELIVERY: frozenset({S.OUT_FOR_DELIVERY, S.DELIVERED, S.DELIVERY_FAILED, S.HUB_ARRIVAL}),
    S.DELIVERY_FAILED: frozenset({S.OUT_FOR_DELIVERY, S.HUB_ARRIVAL, S.RETURN_REQUESTED}),
    S.DELIVERED: frozenset({S.RETURN_REQUESTED}),
    S.RETURN_REQUESTED: frozenset({S.RETURNED, S.LINEHAUL, S.HUB_ARRIVAL}),
    S.RETURNED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXCEPTION: frozenset(),  # resolved against the interrupted status
}

TERMINAL: frozenset[Status] = frozenset({S.DELIVERED, S.RETURNED, S.CANCELLED})
#: Statuses after which the SKU is no longer "in flight" for SLA purposes.
CLOSED: frozenset[Status] = frozenset({S.DELIVERED, S.RETURNED, S.CANCELLED})
IN_TRANSIT: frozenset[Status] = frozenset(_IN_TRANSIT)


def is_legal(current: Status | None, new: Status) -> bool:
    """Whether ``new`` may follow ``current`` (``None``: the SKU's first event)."""
    if current is None:
        return True  # the first event seen may be any status: sources join mid-flow
    if new is S.EXCEPTION:
        return current not in TERMINAL
    return new in TRANSITIONS[current]


class Crs(StrEnum):
    """Coordinate reference system of ``lat``/``lon``; converted to WGS-84 on entry."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


class SkuClass(StrEnum):
    STANDARD = "standard"
    COLD_CHAIN = "cold_chain"
    BULKY = "bulky"
    HAZMAT = "hazmat"


#: Unicode categories that are never part of a name people read: controls (Cc), invisible
#: formatting such as zero-width spaces and bidi overrides (Cf), line/paragraph separators
#: and lone surrogates. They hide or spoof text in the war-room, logs and exports.
_NOT_PLAIN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def plain_text(value: str, allow: str = "") -> str:
    """``value`` unchanged, or ``ValueError`` naming the first control/invisible character
    (``allow``: characters accepted anyway, such as a newline in a multi-line comment)."""
    if value.isprintable():  # C-speed path: printable text has none of those categories
        return value
    for char in value:
        if char not in allow and unicodedata.category(char) in _NOT_PLAIN:
            raise ValueError(f"contains a control or invisible character (U+{ord(char):04X}); use plain text")
    return value


def plain_multiline(value: str) -> str:
    return plain_text(value, allow="\n")


Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@/-]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True), AfterValidator(plain_text)]
AttrKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
MAX_ATTRIBUTE_CHARS = 256


def _attribute_value(value: object) -> object:
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) > MAX_ATTRIBUTE_CHARS:
            raise ValueError(f"must be at most {MAX_ATTRIBUTE_CHARS} characters")
        return value
    raise ValueError("must be a string, number or boolean")


AttrValue = Annotated[Any, AfterValidator(_attribute_value)]


class OrderEvent(BaseModel):
    """One SKU-level event. See README, "The event contract"."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    v: Literal[1] = SCHEMA_VERSION
    event_id: Id
    order_id: Id
    sku: Id
    qty: int = Field(default=1, ge=1, le=100_000)
    status: Status
    event_time: datetime
    source: Name
    channel: Name | None = None
    warehouse: Name | None = None
    node: Name | None = None
    carrier: Name | None = None
    device_id: Name | None = None
    courier_id: Name | None = None
    region: Name | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    crs: Crs = Crs.WGS84
    dest_lat: float | None = Field(default=None, ge=-90, le=90)
    dest_lon: float | None = Field(default=None, ge=-180, le=180)
    promised_by: datetime | None = None
    sku_class: SkuClass = SkuClass.STANDARD
    order_value: float | None = Field(default=None, ge=0, le=1e9)
    vip: bool = False
    attributes: dict[AttrKey, AttrValue] = Field(default_factory=dict, max_length=16)

    @field_validator("event_time", "promised_by")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-11-11T10:00:00+08:00")
        if value < EARLIEST_EVENT_TIME:
            raise ValueError("is before 2000-01-01")
        return value

    @model_validator(mode="after")
    def _coordinates(self) -> OrderEvent:
        for lat_name, lon_name in (("lat", "lon"), ("dest_lat", "dest_lon")):
            lat, lon = getattr(self, lat_name), getattr(self, lon_name)
            if (lat is None) != (lon is None):
                raise ValueError(f"{lat_name} and {lon_name} must be given together")
            if lat == 0 and lon == 0:
                raise ValueError(f"{lat_name}/{lon_name} 0,0 is not a real position")
        return self

    @property
    def event_ts_ns(self) -> int:
        """Event time in integer nanoseconds since the epoch (InfluxDB point time)."""
        delta = self.event_time - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000

    def to_json(self) -> bytes:
        """Canonical wire form: the same event always encodes to the same bytes."""
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


@dataclass(frozen=True)
class Problem:
    """One reason an event was rejected: the field (dotted path) and what is wrong."""

    field: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


class RejectCode(StrEnum):
    """Machine-readable rejection reasons, carried in the dead-letter record."""

    OVERSIZE = "oversize"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    SCHEMA = "schema"
    FUTURE_TIME = "future_time"
    MISSING_KEY = "missing_key"
    KEY_MISMATCH = "key_mismatch"


@dataclass(frozen=True)
class Rejection:
    code: RejectCode
    problems: tuple[Problem, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code.value, "problems": [p.as_dict() for p in self.problems]}

    def summary(self) -> str:
        detail = "; ".join(f"{p.field}: {p.problem}" for p in self.problems)
        return f"{self.code.value}: {detail}" if detail else self.code.value


def _problems(exc: ValidationError) -> tuple[Problem, ...]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(event)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        out.append(Problem(loc, msg))
    return tuple(out)


def parse_event_obj(obj: object, now: datetime) -> OrderEvent | Rejection:
    """Validate an already-decoded JSON value (used by the ingest API)."""
    if not isinstance(obj, dict):
        return Rejection(RejectCode.NOT_OBJECT, (Problem("(event)", "must be a JSON object"),))
    try:
        event = OrderEvent.model_validate(obj)
    except ValidationError as exc:
        return Rejection(RejectCode.SCHEMA, _problems(exc))
    return _check_times(event, now)


def _check_times(event: OrderEvent, now: datetime) -> OrderEvent | Rejection:
    if event.event_time > now + MAX_FUTURE_SKEW:
        return Rejection(
            RejectCode.FUTURE_TIME,
            (Problem("event_time", f"is more than {MAX_FUTURE_SKEW} ahead of the receiver's clock"),),
        )
    return event


def validate_event(raw: bytes, now: datetime) -> OrderEvent | Rejection:
    """Validate one encoded event (bytes as received)."""
    if len(raw) > MAX_EVENT_BYTES:
        return Rejection(RejectCode.OVERSIZE, (Problem("(event)", f"{len(raw)} bytes exceeds {MAX_EVENT_BYTES}"),))
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return Rejection(RejectCode.NOT_UTF8, (Problem("(event)", "is not valid UTF-8"),))
        return Rejection(RejectCode.NOT_JSON, (Problem("(event)", f"is not JSON: {exc}"),))
    return parse_event_obj(obj, now)


def validate_record(key: bytes | None, raw: bytes | None, now: datetime) -> OrderEvent | Rejection:
    """Validate one Kafka record of ``order-events``: the key must be the event's order_id."""
    if key is None:
        return Rejection(RejectCode.MISSING_KEY, (Problem("(key)", "record has no key"),))
    result = validate_event(raw or b"", now)
    if isinstance(result, OrderEvent) and key != result.order_id.encode():
        return Rejection(RejectCode.KEY_MISMATCH, (Problem("order_id", "does not match the record key"),))
    return result
