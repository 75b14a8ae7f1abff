"""Data quality as a first-class incident kind: findings about events that cannot be true.

Checks (pure; time comes in as arguments):

* ``illegal_transition``: the SKU state machine refused an event (it hands over an
  :class:`IllegalTransition` with its reason);
* ``gps_jump``: two consecutive fixes of one SKU imply a speed above ``max_speed_kmh``
  (300 km/h by default; no truck does that, and legs whose ``attributes.mode`` is listed
  in ``exempt_modes``, e.g. air freight, are not checked);
* ``future_timestamp``: event time more than ``future_tolerance`` ahead of the time the
  event was received (the Kafka record time, so a replay sees the same clock), or more than
  ``max_ahead`` ahead of its partition's event clock (``stream.core.watermarks``: what the
  records around it say the time is, which on a feed trailing the wall clock, such as the
  simulator's, is hours before the receipt time); also an event the contract rejected as
  over a day ahead of the receiver's clock (:func:`future_rejection`: it is dead-lettered,
  and its device is named here all the same);
* ``past_timestamp``: event time more than ``max_past`` before the receipt time (or,
  without one, before the partition's newest event time);
* ``abandoned_order``: an open SKU whose order had no event for the retention's
  ``abandoned_after`` (``stream.core.retention``); the worker forgets the order and writes one
  ``abandoned_skus`` point per such SKU (:func:`abandoned_findings`, :func:`abandoned_point`).

Two more data-quality measures live where their data is: missing scans (ladder stages a
forward skip jumped over, ``stream.core.lifecycle``; counted per minute in ``stream.core.aggregates``)
and deliveries whose fix is farther than ``delivered_away_m`` from the stop
(``stream.stages.geo_stage``).

Findings name the device(s) and source, and are clustered by an
:class:`~stream.core.incident_detector.IncidentDetector` of kind ``data_quality`` so one broken scanner
or one misconfigured system becomes one incident that names it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import h3
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config.durations import Duration
from stream.contract import OrderEvent, RejectCode, Status
from stream.core.dlq import DeadLetter
from stream.core.incident_model import IncidentSettings
from stream.core.order_state import OrderState
from stream.core.points import Point, point_time_ns


class DataQualityKind(StrEnum):
    ILLEGAL_TRANSITION = "illegal_transition"
    GPS_JUMP = "gps_jump"
    FUTURE_TIMESTAMP = "future_timestamp"
    PAST_TIMESTAMP = "past_timestamp"
    ABANDONED_ORDER = "abandoned_order"


#: Words for incident titles, per finding kind.
FINDING_TITLES: dict[str, str] = {
    DataQualityKind.ILLEGAL_TRANSITION: "illegal transitions",
    DataQualityKind.GPS_JUMP: "GPS jumps",
    DataQualityKind.FUTURE_TIMESTAMP: "timestamps from the future",
    DataQualityKind.PAST_TIMESTAMP: "timestamps from the far past",
    DataQualityKind.ABANDONED_ORDER: "abandoned orders",
}

#: InfluxDB measurement of abandoned SKUs (one point per open SKU of a forgotten order).
ABANDONED_SKUS = "abandoned_skus"


def _dq_incident_defaults() -> IncidentSettings:
    return IncidentSettings(
        dimensions=["device_id", "source"],
        window=timedelta(hours=1),
        min_count=5,
        expire_items=True,
    )


class DataQualitySettings(BaseModel):
    """``data_quality:`` in ``config/sla.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_speed_kmh: float = Field(default=300.0, gt=0)
    future_tolerance: Duration = timedelta(minutes=5)
    #: An event further ahead of its partition's event clock is a future timestamp (a wide
    #: margin: the clock is a median of the partition's last records, a catch-up moves it).
    max_ahead: Duration = timedelta(hours=1)
    max_past: Duration = timedelta(days=30)
    exempt_modes: list[str] = Field(default_factory=lambda: ["air"])
    #: A delivery whose GPS fix is farther than this from its stop is flagged (metres).
    delivered_away_m: float = Field(default=500.0, gt=0)
    incidents: IncidentSettings = Field(default_factory=_dq_incident_defaults)


@dataclass(frozen=True, slots=True)
class IllegalTransition:
    """An event the SKU state machine refused, with its reason (input from lifecycle)."""

    event: OrderEvent
    current: Status | None
    reason: str


@dataclass(frozen=True, slots=True)
class DataQualityFinding:
    kind: DataQualityKind
    event_id: str
    order_id: str
    sku: str
    source: str
    device_ids: tuple[str, ...]
    event_time: float
    at: float  # when it was seen (receipt time, or the event time without one)
    detail: str

    @property
    def key(self) -> str:
        return f"{self.event_id}:{self.kind.value}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "event_id": self.event_id,
            "order_id": self.order_id,
            "sku": self.sku,
            "source": self.source,
            "device_ids": list(self.device_ids),
            "event_time": datetime.fromtimestamp(self.event_time, UTC).isoformat(),
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(),
            "detail": self.detail,
        }

    def cluster_values(self) -> dict[str, tuple[str, ...]]:
        values: dict[str, tuple[str, ...]] = {"source": (self.source,)}
        if self.device_ids:
            values["device_id"] = self.device_ids
        return values


@dataclass(slots=True)
class _Fix:
    lat: float
    lon: float
    at: float
    device: str | None


class DataQualityMonitor:
    """Per-event checks; keeps the last GPS fix of each in-flight SKU."""

    def __init__(self, settings: DataQualitySettings) -> None:
        self.settings = settings
        self._future = settings.future_tolerance.total_seconds()
        self._ahead = settings.max_ahead.total_seconds()
        self._past = settings.max_past.total_seconds()
        self._exempt = frozenset(settings.exempt_modes)
        self._fixes: dict[str, _Fix] = {}

    def _finding(
        self,
        kind: DataQualityKind,
        event: OrderEvent,
        event_time: float,
        at: float,
        detail: str,
        devices: tuple[str, ...] | None = None,
    ) -> DataQualityFinding:
        if devices is None:
            devices = (event.device_id,) if event.device_id else ()
        return DataQualityFinding(
            kind, event.event_id, event.order_id, event.sku, event.source, devices, event_time, at, detail
        )

    def check_time(
        self,
        event: OrderEvent,
        event_time: float,
        received: float | None,
        clock: float | None = None,
        newest: float | None = None,
    ) -> DataQualityFinding | None:
        """Future / far-past timestamp check against the receipt time (else the newest
        event) and the partition's event ``clock`` (at this receipt time). A finding is seen
        at the event clock (else the receipt time): the time the detectors count in."""
        if received is not None and event_time > received + self._future:
            ahead = (event_time - received) / 60
            return self._finding(
                DataQualityKind.FUTURE_TIMESTAMP,
                event,
                event_time,
                clock if clock is not None else received,
                f"event time is {ahead:.0f} min ahead of receipt",
            )
        if clock is not None and event_time > clock + self._ahead:
            ahead = (event_time - clock) / 60
            return self._finding(
                DataQualityKind.FUTURE_TIMESTAMP,
                event,
                event_time,
                clock,
                f"event time is {ahead:.0f} min ahead of its partition's event time",
            )
        reference = received if received is not None else newest
        if reference is not None and event_time < reference - self._past:
            behind = (reference - event_time) / 86_400
            return self._finding(
                DataQualityKind.PAST_TIMESTAMP,
                event,
                event_time,
                clock if clock is not None else reference,
                f"event time is {behind:.1f} days before receipt",
            )
        return None

    def rejected(self, event: OrderEvent, event_time: float, at: float, reason: str) -> DataQualityFinding:
        """A well-formed event the contract rejected for its time (see :func:`future_rejection`)."""
        return self._finding(DataQualityKind.FUTURE_TIMESTAMP, event, event_time, at, f"rejected: {reason}")

    def check_position(self, key: str, event: OrderEvent, at: float) -> DataQualityFinding | None:
        """Speed between this SKU's previous fix and this one; remembers this fix."""
        if event.lat is None or event.lon is None:
            return None
        previous = self._fixes.get(key)
        self._fixes[key] = _Fix(event.lat, event.lon, at, event.device_id)
        if previous is None or event.attributes.get("mode") in self._exempt:
            return None
        km = h3.great_circle_distance((previous.lat, previous.lon), (event.lat, event.lon), unit="km")
        hours = max(abs(at - previous.at), 1.0) / 3600.0
        speed = km / hours
        if speed <= self.settings.max_speed_kmh:
            return None
        devices = tuple(dict.fromkeys(d for d in (previous.device, event.device_id) if d))
        return self._finding(
            DataQualityKind.GPS_JUMP,
            event,
            at,
            at,
            f"{km:.0f} km in {hours * 60:.0f} min ({speed:.0f} km/h)",
            devices,
        )

    def illegal(self, record: IllegalTransition, event_time: float, at: float) -> DataQualityFinding:
        current = record.current.value if record.current is not None else "none"
        return self._finding(
            DataQualityKind.ILLEGAL_TRANSITION,
            record.event,
            event_time,
            at,
            f"{current} -> {record.event.status.value}: {record.reason}",
        )

    def forget(self, key: str) -> None:
        self._fixes.pop(key, None)

    def fix_of(self, key: str) -> list[Any] | None:
        """The SKU's last fix as plain values (stored with the SKU's state)."""
        fix = self._fixes.get(key)
        return None if fix is None else [fix.lat, fix.lon, fix.at, fix.device]

    def restore_fix(self, key: str, value: list[Any]) -> None:
        self._fixes[key] = _Fix(value[0], value[1], value[2], value[3])

    def __len__(self) -> int:
        return len(self._fixes)

    def to_dict(self) -> dict[str, Any]:
        return {"fixes": {k: [f.lat, f.lon, f.at, f.device] for k, f in self._fixes.items()}}

    @classmethod
    def from_dict(cls, settings: DataQualitySettings, data: dict[str, Any]) -> DataQualityMonitor:
        monitor = cls(settings)
        monitor._fixes = {k: _Fix(v[0], v[1], v[2], v[3]) for k, v in data["fixes"].items()}
        return monitor


def future_rejection(letter: DeadLetter) -> tuple[OrderEvent, str] | None:
    """The event of a dead letter rejected only for its time (over a day ahead of the
    receiver's clock), with the rejection's words; ``None`` for any other dead letter."""
    reason = letter.reason
    if reason.get("code") != RejectCode.FUTURE_TIME or letter.value is None:
        return None
    try:
        event = OrderEvent.model_validate_json(letter.value)
    except ValidationError:
        return None
    words = "; ".join(f"{p['field']} {p['problem']}" for p in reason.get("problems", ()))
    return event, words or RejectCode.FUTURE_TIME.value


def abandoned_findings(order: OrderState, watermark_ns: int) -> list[DataQualityFinding]:
    """One ``abandoned_order`` finding per open SKU of an order forgotten as abandoned: its
    newest event names the source and device that last saw it."""
    out = []
    for sku in order.skus.values():
        if sku.closed or not sku.timeline:
            continue
        last = sku.timeline[-1]
        quiet_days = (watermark_ns - order.last_event_ns) / 86_400e9
        out.append(
            DataQualityFinding(
                DataQualityKind.ABANDONED_ORDER,
                last.event_id,
                order.order_id,
                sku.sku,
                last.source,
                (last.device,) if last.device else (),
                last.time_ns / 1e9,
                watermark_ns / 1e9,
                f"open ({sku.status.value}) with no event for {quiet_days:.1f} days",
            )
        )
    return out


def abandoned_point(finding: DataQualityFinding, order: OrderState, partition: int) -> Point:
    """The ``abandoned_skus`` point of a finding, at the SKU's newest event time (offset by a
    hash of order and SKU): a sweep repeated after a crash writes the same point again."""
    sku = order.skus[finding.sku]
    offset = zlib.crc32(f"{finding.order_id}/{finding.sku}".encode())
    return Point(
        ABANDONED_SKUS,
        {
            "status": sku.status.value,
            "source": finding.source,
            "region": sku.facts.region,
            "carrier": sku.facts.carrier,
            "partition": str(partition),
        },
        {
            "order_id": finding.order_id,
            "sku": finding.sku,
            "event_id": finding.event_id,
            "quiet_s": round(finding.at - finding.event_time, 3),
            "count": 1,
        },
        point_time_ns(sku.timeline[-1].time_ns, offset),
    )
