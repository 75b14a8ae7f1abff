"""InfluxDB line protocol (1.x ``/write``) and the ``sku_events`` series (pure).

Point identity in InfluxDB is measurement + tag set + timestamp: writing the same point
again replaces it (last write wins), so a retry, a replay from the dead-letter topic or a
reprocessing after a crash is harmless as long as the same event always becomes the same
point. :func:`point_time_ns` makes the timestamp deterministic and nearly collision-free:

    point time = event time (ns) + (blake2b-64(event_id) mod 1,000,000)

The offset (< 1 ms) keeps two events of the same series at the same instant (two lines of
an order packed in the same second) from overwriting each other; the chance that two such
events still collide is 1 in a million per pair. Event times carry at most microseconds,
so the millisecond of the event time is preserved; ``event_id`` is a field, the true
identity.

Tags are only low-cardinality dimensions (status, region, warehouse, carrier, channel,
source, and an H3 cell at a coarse resolution when a cell function is plugged in); ids,
quantities and positions are fields.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Mapping

from stream.contract import OrderEvent, Status
from stream.lifecycle import EventChange, Outcome

SKU_EVENTS = "sku_events"

#: Range of the per-event offset added to the event time (ns).
TIME_OFFSET_RANGE = 1_000_000

FieldValue = str | int | float | bool

_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ ", "\n": "\\n"})
_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\n"})
_STRING = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n"})


def time_offset_ns(event_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big") % TIME_OFFSET_RANGE


def point_time_ns(event_time_ns: int, event_id: str) -> int:
    return event_time_ns + time_offset_ns(event_id)


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


def line(measurement: str, tags: Mapping[str, str | None], fields: Mapping[str, FieldValue | None],
         time_ns: int) -> str:
    """One point. Tags with empty or missing values are left out (InfluxDB has no empty tag);
    tags are sorted by key, as InfluxDB recommends."""
    tag_part = "".join(
        f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags.items()) if v and escape_tag(v)
    )
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


#: Optional hook: (lat, lon) -> coarse H3 cell id, supplied by the geo package when available.
CellFunction = Callable[[float, float], str | None]


_STATUS_VALUES = {s: s.value for s in Status}


def _tag(name: str, value: str | None) -> str:
    if not value:
        return ""
    escaped = escape_tag(value)
    return f",{name}={escaped}" if escaped else ""


def sku_event_line(event: OrderEvent, change: EventChange, cell_of: CellFunction | None = None) -> str:
    """The ``sku_events`` point of one accepted event (hand-built: this runs once per event).

    Tags, sorted: carrier, channel, [h3], region, source, status, warehouse. Fields:
    event_id, order_id, sku (ids match ``[A-Za-z0-9._:@/-]+`` by contract: no escaping),
    qty, lat, lon, late, illegal.
    """
    cell = cell_of(event.lat, event.lon) if cell_of is not None and event.lat is not None and event.lon is not None \
        else None
    tags = (
        _tag("carrier", event.carrier) + _tag("channel", event.channel) + _tag("h3", cell)
        + _tag("region", event.region) + _tag("source", event.source)
        + ",status=" + _STATUS_VALUES[event.status] + _tag("warehouse", event.warehouse)
    )
    position = ""
    if event.lat is not None and event.lon is not None and math.isfinite(event.lat) and math.isfinite(event.lon):
        position = f",lat={event.lat!r},lon={event.lon!r}"
    late = "true" if change.outcome is Outcome.LATE or change.entry.late else "false"
    illegal = "true" if change.outcome is Outcome.ILLEGAL else "false"
    return (
        f'{SKU_EVENTS}{tags} event_id="{event.event_id}",order_id="{event.order_id}",sku="{event.sku}",'
        f"qty={event.qty}i{position},late={late},illegal={illegal} "
        f"{point_time_ns(change.entry.time_ns, event.event_id)}"
    )
