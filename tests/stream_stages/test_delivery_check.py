"""Delivered away from the stop (pure part of the geo stage): the stop is converted with the
fix's CRS, the distance is great-circle metres, the limit is configurable."""

from __future__ import annotations

from datetime import UTC, datetime

from geo.coords import gcj02_to_wgs84
from geo.distance import haversine_m
from stream.contract import Crs, OrderEvent, Status
from stream.core.lifecycle import apply_event
from stream.core.order_state import new_order
from stream.stage_api import Accepted, SourceRecord
from stream.stages.geo_stage import check_deliveries, delivery_distance_line, locate

AT = datetime(2026, 5, 12, 5, 15, tzinfo=UTC)


def accepted(
    n: int, status: Status, lat: float, lon: float, dest: tuple[float, float] | None, crs: Crs = Crs.GCJ02
) -> Accepted:
    event = OrderEvent(
        event_id=f"e{n}",
        order_id=f"o{n}",
        sku="s",
        status=status,
        event_time=AT,
        source="lade_d",
        lat=lat,
        lon=lon,
        crs=crs,
        courier_id="1656",
        node="station-165",
        dest_lat=dest[0] if dest else None,
        dest_lon=dest[1] if dest else None,
    )
    _, change = apply_event(new_order(event.order_id, 0), event)
    assert change is not None
    return Accepted(SourceRecord("order-events", 2, 40 + n, None, event.order_id.encode(), b""), event, change)


def test_the_stop_is_converted_like_the_fix_and_far_deliveries_are_away() -> None:
    near = accepted(1, Status.DELIVERED, 43.90414, 126.55037, (43.90465, 126.55021))
    far = accepted(2, Status.DELIVERED, 43.87081, 126.56611, (43.8411, 126.56519))
    not_delivered = accepted(3, Status.OUT_FOR_DELIVERY, 43.87081, 126.56611, (43.8411, 126.56519))
    no_stop = accepted(4, Status.DELIVERED, 43.87081, 126.56611, None)
    items = [near, far, not_delivered, no_stop]
    checks = check_deliveries(items, locate([i.event for i in items]), 500.0)
    assert [item.event.event_id for item, _ in checks] == ["e1", "e2"]
    (_, near_check), (_, far_check) = checks
    fix = gcj02_to_wgs84(126.56611, 43.87081)
    stop = gcj02_to_wgs84(126.56519, 43.8411)
    assert far_check.distance_m == float(haversine_m(fix[0], fix[1], stop[0], stop[1]))
    assert far_check.away and not near_check.away and near_check.distance_m < 60
    assert far_check.to_dict() == {
        "distance_m": round(far_check.distance_m, 1),
        "limit_m": 500.0,
        "away": True,
        "courier": "1656",
        "station": "station-165",
    }
    line = delivery_distance_line(*checks[1])
    assert line.startswith("delivery_distance,courier=1656,partition=2,source=lade_d,station=station-165 ")
    assert "away=1i" in line and 'event_id="e2"' in line


def test_the_limit_is_configurable() -> None:
    far = accepted(5, Status.DELIVERED, 43.87081, 126.56611, (43.8411, 126.56519))
    ((_, check),) = check_deliveries([far], locate([far.event]), 5000.0)
    assert not check.away
