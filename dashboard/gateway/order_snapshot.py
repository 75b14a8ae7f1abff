"""The worker's per-order snapshot as published on ``order-updates`` (what the gateway reads).

One record per changed order, key ``order_id``::

    {"order_id": "o-1", "seq": 7,
     "rollup": "linehaul" | {"status": ..., "promised_by": ..., "summary": {"en": ..., "zh-CN": ...}},
     "updated_at": "2026-11-11T10:00:00+08:00",
     "skus": {"sku-1": {"status": "linehaul", "stage_times": {...},
                        "position": {"lat": 31.23, "lon": 121.47},
                        "timeline": [{"event_id", "status", "event_time", "node", "source", "flags"}]}}}

Parsing is tolerant where the worker may evolve (unknown fields are ignored, ``last_position``
or flat ``lat``/``lon`` are read as ``position``, a snapshot nested under ``order`` is
unwrapped) and strict where the gateway relies on it (``order_id``, ``seq``, times).
:meth:`OrderSnapshot.lateness` reads whether the order was late and by how much
(``extensions.outcome``: ``late``, ``late_by_s``, ``late_days``, ``promise_due``);
:meth:`OrderSnapshot.trail` a SKU's recent WGS-84 fixes (``extensions.trail``, kept by the
worker's geo stage, ``stream/stages/geo_stage.py``). A SKU's ``destination`` is its stop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from stream.contract import Status

_STATUSES = frozenset(s.value for s in Status)


class Position(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    #: The event time of the fix (the page shows its age; ``None`` from older workers).
    time: AwareDatetime | None = None


class TimelineEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: str
    event_time: AwareDatetime
    event_id: str | None = None
    reason: str | None = None

    @property
    def known_status(self) -> Status | None:
        return Status(self.status) if self.status in _STATUSES else None


class SkuSnapshot(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: str
    qty: int | None = None
    status_time: AwareDatetime | None = None
    position: Position | None = Field(default=None, validation_alias=AliasChoices("position", "last_position"))
    timeline: tuple[TimelineEntry, ...] = ()
    promised_by: AwareDatetime | None = None
    eta: AwareDatetime | None = None
    reason: str | None = None
    #: Ladder stages the worker recorded as not scanned (``stream.core.lifecycle`` skips).
    not_scanned: tuple[str, ...] = ()
    #: When each status was first reached (``stream.core.rollup``); outlives the capped timeline.
    stage_times: dict[str, AwareDatetime] = Field(default_factory=dict)
    #: The stop (the customer's address point): never shown to a customer as it is.
    destination: Position | None = None

    @model_validator(mode="before")
    @classmethod
    def _flat_position(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and "position" not in data
            and "last_position" not in data
            and data.get("lat") is not None
            and data.get("lon") is not None
        ):
            return {**data, "position": {"lat": data["lat"], "lon": data["lon"]}}
        return data

    @property
    def known_status(self) -> Status | None:
        return Status(self.status) if self.status in _STATUSES else None


class Lateness(BaseModel):
    """The order against its promise (``extensions.outcome``, written by the worker's outcome
    stage, ``stream/core/outcomes.py``): ``late`` and by how much once delivered."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    state: str  # delivered | open | cancelled
    promised_by: AwareDatetime | None = None
    #: The deadline the promise gives (a date-only promise: the end of that day, local time).
    promise_due: AwareDatetime | None = None
    promise_rule: str | None = None
    delivered_at: AwareDatetime | None = None
    #: Delivered at or after the deadline (``None``: not delivered, or no promise).
    late: bool | None = None
    #: Seconds from the deadline to the delivery (0 when on time).
    late_by_s: int | None = None
    #: Calendar days from the promised day to the delivery day (0 when on time).
    late_days: int | None = None

    def past_promise(self, at: datetime) -> bool:
        """Open with its deadline before ``at``."""
        return self.state == "open" and self.promise_due is not None and self.promise_due <= at


class OrderSnapshot(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    order_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    seq: int = Field(ge=0)
    rollup: Any = None
    skus: dict[str, SkuSnapshot] = Field(default_factory=dict)
    updated_at: AwareDatetime | None = None
    #: The worker stages' per-order state (``stream.core.rollup.order_snapshot``), by stage name.
    extensions: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, dict) and "skus" not in data:
            for name in ("order", "snapshot"):
                inner = data.get(name)
                if isinstance(inner, dict):
                    return {**inner, **{k: v for k, v in data.items() if k != name}}
        return data

    @model_validator(mode="after")
    def _wgs84_positions(self) -> OrderSnapshot:
        """A SKU's ``position`` is the event's as sent (GCJ-02 or BD-09 from Chinese SDKs); the
        trail holds the geo stage's WGS-84 fix of the same event. Use that one, so the marker
        sits on the route and on WGS-84 maps."""
        for sku_id, sku in self.skus.items():
            if sku.position is None or sku.position.time is None:
                continue
            same = [p for p in self.trail(sku_id) if p.time == sku.position.time]
            if same and (same[-1].lat, same[-1].lon) != (sku.position.lat, sku.position.lon):
                self.skus[sku_id] = sku.model_copy(update={"position": same[-1]})
        return self

    @property
    def rollup_status(self) -> Status | None:
        value = self.rollup.get("status") if isinstance(self.rollup, dict) else self.rollup
        return Status(value) if isinstance(value, str) and value in _STATUSES else None

    def rollup_summary(self) -> dict[str, str] | None:
        """The worker's short, status-derived text per language ("2 of 3 items delivered")."""
        value = self.rollup.get("summary") if isinstance(self.rollup, dict) else None
        if not isinstance(value, dict):
            return None
        texts = {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str) and len(v) <= 200}
        return texts or None

    def disruption_reason(self) -> str | None:
        """The delay category of a disruption zone the order is in (``weather``, ...), if any."""
        value = self.extensions.get("disruption")
        reason = value.get("reason") if isinstance(value, dict) else None
        return reason if isinstance(reason, str) else None

    def courier_nearby(self) -> bool:
        """Whether a courier carrying the order is inside a SKU's customer area right now
        (``extensions.geofence.nearby``, kept by the worker's geofence stage)."""
        value = self.extensions.get("geofence")
        nearby = value.get("nearby") if isinstance(value, dict) else None
        return isinstance(nearby, dict) and bool(nearby)

    def eta_window(self) -> dict[str, Any] | None:
        """The worker's ETA window and delay state (``extensions.eta``, ``stream.core.order_eta``):
        ``{from, to, basis, promise, state, slipped, tz_offset_min}``, or ``None``."""
        value = self.extensions.get("eta")
        if not isinstance(value, dict):
            return None
        try:
            start, end = datetime.fromisoformat(value["from"]), datetime.fromisoformat(value["to"])
            offset = int(value.get("tz_offset_min") or 0)
        except (KeyError, TypeError, ValueError):
            return None
        if start.tzinfo is None or end.tzinfo is None or not -900 <= offset <= 900:
            return None
        state = value.get("state")
        return {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "tz_offset_min": offset,
            "basis": value.get("basis") if value.get("basis") in ("lanes", "promise") else None,
            "state": state if state in ("on_track", "at_risk", "late", "stalled") else None,
            "slipped": value.get("slipped") is True,
        }

    def trail(self, sku: str) -> tuple[Position, ...]:
        """The SKU's recent fixes, oldest first (``[lat, lon, time]`` triples in
        ``extensions.trail``); malformed points are skipped, never guessed."""
        value = self.extensions.get("trail")
        points = value.get(sku) if isinstance(value, dict) else None
        if not isinstance(points, list):
            return ()
        out: list[Position] = []
        for point in points:
            if not isinstance(point, list) or len(point) != 3 or point[2] is None:
                continue
            try:
                out.append(Position(lat=point[0], lon=point[1], time=point[2]))
            except ValidationError:
                continue
        return tuple(sorted(out, key=lambda p: p.time))  # type: ignore[arg-type, return-value]

    def lateness(self) -> Lateness | None:
        """Whether the order was late and by how much (``None``: the worker wrote no outcome)."""
        value = self.extensions.get("outcome")
        if not isinstance(value, dict):
            return None
        try:
            return Lateness.model_validate(value)
        except ValidationError:
            return None

    def rollup_time(self, name: str) -> datetime | None:
        """An aware datetime field of a dict rollup (``promised_by``, ``eta``), if valid."""
        if not isinstance(self.rollup, dict):
            return None
        value = self.rollup.get(name)
        if not isinstance(value, str):
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else None
