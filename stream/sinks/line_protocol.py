"""InfluxDB line protocol (1.x ``/write``) and the ``sku_events`` series (pure).

Point identity in InfluxDB is measurement + tag set + timestamp: writing the same point
again replaces it (last write wins). Two distinct events must therefore never share a
point, and the same event must always become the same point, so that a retry, a replay
from ``influx-dlq`` or a reprocessing after a crash is harmless. A hash of ``event_id`` in
the timestamp cannot give the first (flash sales stamp thousands of events with the same
second and tags: with 1,000,000 hash values, 2,000 such events lost one point). The
identity of an ``sku_events`` point is the Kafka record the event came from instead:

    tag ``partition`` = the record's source partition
    point time        = event time truncated to the millisecond + (record offset mod 1,000,000) ns

Uniqueness bound: offsets are unique within a partition, so two distinct events share a
point only if they come from the same partition, carry the same tags and the same
event-time millisecond, and their offsets differ by a nonzero multiple of 1,000,000. Events
of one partition fewer than 1,000,000 offsets apart never collide, whatever their times
(so a flash sale of up to a million events per partition in one millisecond is safe, and
so is any partition that has held fewer than a million records).

Idempotence: the (partition, offset) of a record never changes, so a redelivery or a crash
replay of a record rewrites exactly its point, and ``influx-dlq`` replays the written lines
verbatim. A re-produced copy of an event (same ``event_id``, new offset) is a duplicate
for the worker, which writes no point for it, as long as its order is in the worker's
table (``closed_retention``/``open_retention`` of event time after the order's last event).

The point's millisecond is the event's; the exact event time is kept in the field
``event_time_us`` (epoch microseconds) when it has digits below the millisecond.
``event_id`` is a field, the true identity of the event.

Tags are only low-cardinality dimensions (status, region, warehouse, carrier, channel,
source, partition, and an H3 cell at a coarse resolution when a cell function is plugged
in); ids, quantities and positions are fields.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

from alerting.decisions import MEASUREMENT as ALERT_EVENTS
from alerting.decisions import TAG_LABELS, AlertEvent
from stream.contract import OrderEvent, Status
from stream.core.incident_model import IncidentChange
from stream.core.lifecycle import EventChange, Outcome
from stream.core.points import TIME_OFFSET_RANGE as TIME_OFFSET_RANGE
from stream.core.points import FieldValue, Point
from stream.core.points import point_time_ns as point_time_ns

SKU_EVENTS = "sku_events"

_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ ", "\n": "\\n"})
_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\n"})
_STRING = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n"})


@functools.lru_cache(maxsize=65_536)
def escape_tag(value: str) -> str:
    """Escape a tag key or value (or a field key). A trailing backslash would escape the
    separator after it, so it is dropped. Memoised: tag values repeat (low cardinality)."""
    return value.rstrip("\\").translate(_KEY)


def format_field(value: FieldValue) -> str | None:
    """A field value in line protocol, or ``None`` for values InfluxDB cannot store (NaN)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    return '"' + value.translate(_STRING) + '"'


def line(
    measurement: str, tags: Mapping[str, str | None], fields: Mapping[str, FieldValue | None], time_ns: int
) -> str:
    """One point. Tags with empty or missing values are left out (InfluxDB has no empty tag);
    tags are sorted by key, as InfluxDB recommends."""
    tag_part = "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags.items()) if v and escape_tag(v))
    field_parts = []
    for key, value in fields.items():
        if value is None:
            continue
        formatted = format_field(value)
        if formatted is not None:
            field_parts.append(f"{escape_tag(key)}={formatted}")
    if not field_parts:
        raise ValueError(f"point of {measurement} at {time_ns} has no field")
    return f"{measurement.translate(_MEASUREMENT)}{tag_part} {','.join(field_parts)} {time_ns}"


def point_line(point: Point) -> str:
    """The line of a core :class:`~stream.core.points.Point`."""
    return line(point.measurement, point.tags, point.fields, point.time_ns)


#: Optional hook: (lat, lon) -> coarse H3 cell id, supplied by the geo package when available.
CellFunction = Callable[[float, float], str | None]


_STATUS_VALUES = {s: s.value for s in Status}


def tag(name: str, value: str | None) -> str:
    """``,name=value`` for a hand-built point's tag set, or nothing for an empty value."""
    if not value:
        return ""
    escaped = escape_tag(value)
    return f",{name}={escaped}" if escaped else ""


def sku_event_line(
    event: OrderEvent, change: EventChange, cell_of: CellFunction | None = None, *, partition: int, offset: int
) -> str:
    """The ``sku_events`` point of one accepted event, read from source record
    (``partition``, ``offset``) (hand-built: this runs once per event).

    Tags, sorted: carrier, channel, [h3], partition, region, source, status, warehouse.
    Fields: event_id, order_id, sku (ids match ``[A-Za-z0-9._:@/-]+`` by contract: no
    escaping), qty, lat, lon, late, illegal, [event_time_us].
    """
    cell = (
        cell_of(event.lat, event.lon)
        if cell_of is not None and event.lat is not None and event.lon is not None
        else None
    )
    tags = (
        tag("carrier", event.carrier)
        + tag("channel", event.channel)
        + tag("h3", cell)
        + f",partition={partition}"
        + tag("region", event.region)
        + tag("source", event.source)
        + ",status="
        + _STATUS_VALUES[event.status]
        + tag("warehouse", event.warehouse)
    )
    position = ""
    if event.lat is not None and event.lon is not None and math.isfinite(event.lat) and math.isfinite(event.lon):
        position = f",lat={event.lat!r},lon={event.lon!r}"
    late = "true" if change.outcome is Outcome.LATE or change.entry.late else "false"
    illegal = "true" if change.outcome is Outcome.ILLEGAL else "false"
    time_ns = change.entry.time_ns
    exact = f",event_time_us={time_ns // 1000}i" if time_ns % TIME_OFFSET_RANGE else ""
    return (
        f'{SKU_EVENTS}{tags} event_id="{event.event_id}",order_id="{event.order_id}",sku="{event.sku}",'
        f"qty={event.qty}i{position},late={late},illegal={illegal}{exact} "
        f"{point_time_ns(time_ns, offset)}"
    )


def incident_line(change: IncidentChange, record: Mapping[str, Any], rank: int) -> str:
    """The ``incidents`` point of a detector's lifecycle event: what the war-room's time
    travel draws of an incident as of a past minute. ``record``: the event's record with its
    root cause located (``lat``/``lon``); ``rank``: its place among the events of one
    evaluation slot (they share a time and often their tags), which keeps their points apart."""
    rec = change.record
    where = {**(record.get("location") or {}), **(record.get("root_cause") or {})}
    tags = {"kind": rec["kind"], "dimension": rec["dimension"], "state": rec["state"], "replay": rec.get("replay")}
    fields: dict[str, FieldValue | None] = {
        "incident_id": rec["incident_id"],
        "event": change.type,
        "root_cause": rec["root_cause_text"],
        "current": rec["counts"]["current"],
        "skus": rec["counts"]["skus"],
        "orders": rec["counts"]["orders"],
        "lift": float(rec["lift"]),
        "order_value": float(rec["impact"]["order_value"]),
        "vip_orders": rec["impact"]["vip_orders"],
        "penalty_orders": rec["impact"]["penalty_orders"],
        "title": record.get("title"),
        "opened_at": record.get("opened_at"),
        "lat": where.get("lat"),
        "lon": where.get("lon"),
    }
    return line("incidents", tags, fields, point_time_ns(int(round(change.at * 1_000_000)) * 1000, rank))


def alert_event_line(record: AlertEvent, time_ns: int | None = None) -> str:
    """The ``alert_events`` point of an alert's history record, at ``time_ns`` (default its
    own time; the agent stamps its points with :class:`alerting.decisions.HistoryTimes`).
    Ids are fields, never tags; a newline in a text field becomes a space."""
    tags: dict[str, str | None] = {"event": record.event.value, "receiver": record.receiver}
    if record.tier is not None:
        tags["tier"] = record.tier.value
    for name in TAG_LABELS:
        tags[name] = record.labels.get(name)
    fields: dict[str, FieldValue | None] = {
        "record_id": record.record_id,
        "alert_id": record.alert_id,
        "incident_ids": ",".join(record.incident_ids),
        "by": record.by or None,
        "step": record.step,
        "notification_id": record.notification_id or None,
        "silence_id": record.silence_id or None,
        "detail": record.detail or None,
    }
    text = {k: v.replace("\n", " ") for k, v in fields.items() if isinstance(v, str)}
    return line(ALERT_EVENTS, tags, {**fields, **text}, record.time_ns if time_ns is None else time_ns)
