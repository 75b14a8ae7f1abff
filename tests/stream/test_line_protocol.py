"""Line protocol and the sku_events point (pure)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from stream.contract import OrderEvent, Status
from stream.lifecycle import apply_event, new_order
from stream.line_protocol import TIME_OFFSET_RANGE, escape_tag, format_field, line, point_time_ns, sku_event_line

T = datetime(2026, 11, 11, 8, 30, 15, 123456, tzinfo=timezone.utc)


def event(**extra: object) -> OrderEvent:
    base: dict[str, object] = dict(event_id="e-1", order_id="o-1", sku="s-1", status=Status.PICKED, event_time=T,
                                   source="wms")
    return OrderEvent(**(base | extra))


def test_escaping_of_measurements_tags_and_string_fields() -> None:
    out = line("my measure", {"k ey": "a,b=c d", "empty": "", "none": None, "trail": "x\\"},
               {"s": 'say "hi" \\ now', "i": 3, "f": 1.5, "b": True, "nan": float("nan"), "gone": None}, 7)
    assert out == r'my\ measure,k\ ey=a\,b\=c\ d,trail=x s="say \"hi\" \\ now",i=3i,f=1.5,b=true 7'
    assert escape_tag("\\") == ""
    assert format_field(float("inf")) is None
    with pytest.raises(ValueError):
        line("m", {}, {"x": None}, 1)


def test_point_time_is_event_time_plus_a_stable_sub_millisecond_offset() -> None:
    ns = event().event_ts_ns
    a, b = point_time_ns(ns, "e-1"), point_time_ns(ns, "e-2")
    assert a == point_time_ns(ns, "e-1")  # deterministic (no salted hash)
    assert a != b and 0 <= a - ns < TIME_OFFSET_RANGE and (a - ns) < 1_000_000
    assert a // 1_000_000 == ns // 1_000_000 or a // 1_000_000 == ns // 1_000_000 + 1


def test_sku_event_line_tags_fields_and_flags() -> None:
    e = event(region="310000", warehouse="wh 1", carrier="sf", channel="tmall", lat=31.2, lon=121.4, qty=2)
    order, change = apply_event(new_order("o-1", 0), e)
    assert change is not None
    got = sku_event_line(e, change, cell_of=lambda lat, lon: "8531")
    assert got == (
        "sku_events,carrier=sf,channel=tmall,h3=8531,region=310000,source=wms,status=picked,warehouse=wh\\ 1 "
        'event_id="e-1",order_id="o-1",sku="s-1",qty=2i,lat=31.2,lon=121.4,late=false,illegal=false '
        f"{point_time_ns(e.event_ts_ns, 'e-1')}"
    )
    # the same event always gives the same point
    assert sku_event_line(e, change) == sku_event_line(e, change)
    late = event(event_id="e-0", status=Status.PAID, event_time=T.replace(minute=0))
    _, change = apply_event(order, late)
    assert change is not None
    assert "late=true,illegal=false" in sku_event_line(late, change)
    assert ",h3=" not in sku_event_line(late, change, cell_of=lambda lat, lon: "x")  # no position, no cell
