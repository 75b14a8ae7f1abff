"""A time-series point as plain data (pure): what the core decides to record, with no wire format.

The core returns :class:`Point` values; the InfluxDB sink encodes them in line protocol
(``point_line`` in the sinks' ``line_protocol`` module, whose doc explains point identity). A
point's identity is its measurement, tags and time (writing it again replaces it), so the
time is the core's decision: :func:`point_time_ns` keeps distinct records apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

FieldValue = str | int | float | bool

#: Point times are the event time truncated to this many ns (a millisecond) plus the
#: record offset modulo it: the number of distinct points per series and millisecond.
TIME_OFFSET_RANGE = 1_000_000


class Point(NamedTuple):
    """One point. Tags with empty or missing values and fields that are ``None`` are left out."""

    measurement: str
    tags: Mapping[str, str | None]
    fields: Mapping[str, FieldValue | None]
    time_ns: int


def point_time_ns(event_time_ns: int, offset: int) -> int:
    """The point time of the event of source record ``offset``: the event time truncated to the
    millisecond plus ``offset`` modulo :data:`TIME_OFFSET_RANGE` ns."""
    return event_time_ns - event_time_ns % TIME_OFFSET_RANGE + offset % TIME_OFFSET_RANGE
