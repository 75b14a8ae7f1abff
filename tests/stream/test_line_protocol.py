"""Line protocol and the sku_events point (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stream.contract import OrderEvent, Status
from stream.core.lifecycle import apply_event
from stream.core.order_state import new_order
from stream.sinks.line_protocol import TIME_OFFSET_RANGE, escape_tag, format_field, line, point_time_ns, sku_event_line

T = datetime(2026, 11, 11, 8, 30, 15, 123456, tzinfo=UTC)


def event(**extra: object) -> OrderEvent:
    base: dict[str, object] = dict(
        event_id="e-1", order_id="o-1", sku="s-1", status=Status.PICKED, event_time=T, source="wms"
    )
    return OrderEvent(**(base | extra))


def test_escaping_of_measurements_tags_and_string_fields() -> None:
    out = line(
        "my measure",
        {"k ey": "a,b=c d", "empty": "", "none": None, "trail": "x\\"},
        {"s": 'say "hi" \\ now', "i": 3, "f": 1.5, "b": True, "nan": float("nan"), "gone": None},
        7,
    )
    assert out == r'my\ measure,k\ ey=a\,b\=c\ d,trail=x s="say \"hi\" \\ now",i=3i,f=1.5,b=true 7'
    assert escape_tag("\\") == ""
    assert format_field(float("inf")) is None
    with pytest.raises(ValueError):
        line("m", {}, {"x": None}, 1)


def test_point_time_is_the_event_millisecond_plus_the_record_offset() -> None:
    ns = event().event_ts_ns
    ms = ns - ns % 1_000_000
    assert point_time_ns(ns, 0) == ms and point_time_ns(ns, 123) == ms + 123
    # every offset of a window of a million gets its own time within the event's millisecond
    times = {point_time_ns(ns, o) for o in range(5_000_000, 5_000_000 + TIME_OFFSET_RANGE)}
    assert len(times) == TIME_OFFSET_RANGE and min(times) == ms and max(times) == ms + TIME_OFFSET_RANGE - 1
    # the bound: offsets a million apart share the time (and are told apart by nothing else)
    assert point_time_ns(ns, 7) == point_time_ns(ns, 7 + TIME_OFFSET_RANGE)
    assert point_time_ns(-1, 0) == -1_000_000  # before 1970: still floored to the millisecond


def test_events_sharing_time_and_tags_get_distinct_points_and_replays_the_same() -> None:
    order = new_order("o-1", 3)
    points: set[str] = set()
    for offset in range(20_000):
        e = event(event_id=f"e-{offset}", sku=f"s-{offset}")
        order, change = apply_event(order, e)
        assert change is not None
        got = sku_event_line(e, change, partition=3, offset=offset)
        assert got == sku_event_line(e, change, partition=3, offset=offset)  # a replay: the same point
        points.add(got.split(" ", 1)[0] + " " + got.rsplit(" ", 1)[1])  # measurement+tags, time
    assert len(points) == 20_000


def test_sku_event_line_tags_fields_and_flags() -> None:
    e = event(region="310000", warehouse="wh 1", carrier="sf", channel="tmall", lat=31.2, lon=121.4, qty=2)
    order, change = apply_event(new_order("o-1", 0), e)
    assert change is not None
    got = sku_event_line(e, change, cell_of=lambda lat, lon: "8531", partition=2, offset=41)
    assert got == (
        "sku_events,carrier=sf,channel=tmall,h3=8531,partition=2,region=310000,source=wms,status=picked,"
        "warehouse=wh\\ 1 "
        'event_id="e-1",order_id="o-1",sku="s-1",qty=2i,lat=31.2,lon=121.4,late=false,illegal=false,'
        "event_time_us=1794385815123456i "
        "1794385815123000041"
    )
    late = event(event_id="e-0", status=Status.PAID, event_time=T.replace(minute=0, microsecond=0))
    _, change = apply_event(order, late)
    assert change is not None
    got = sku_event_line(late, change, partition=0, offset=1)
    assert "late=true,illegal=false 1794384015000000001" in got  # whole milliseconds: no exact time field
    assert ",h3=" not in sku_event_line(late, change, cell_of=lambda lat, lon: "x", partition=0, offset=1)
