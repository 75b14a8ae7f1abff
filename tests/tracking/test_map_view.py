"""What the customer's map gets from a worker snapshot: the route (from the geo stage's
trail) and the destination's city, never the address (``dashboard.gateway.track_map``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dashboard.gateway.order_snapshot import OrderSnapshot
from dashboard.gateway.projection import customer_view
from geo.coords import wgs84_to_gcj02
from stream.stages.geo_stage import TRAIL_MAX_POINTS, TRAIL_WINDOW_S, GeoFix, extend_trail

T0 = datetime(2026, 11, 11, 9, 0, tzinfo=UTC)
STOP = {"lat": 30.25873, "lon": 120.16421}  # a street in Hangzhou


def _iso(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat(timespec="microseconds")


def _snapshot(status: str, trail: list[list[Any]], out_at: float | None = 30) -> OrderSnapshot:
    stage_times = {"hub_arrival": _iso(0)}
    if out_at is not None:
        stage_times["out_for_delivery"] = _iso(out_at)
    last = trail[-1]
    return OrderSnapshot.model_validate(
        {
            "order_id": "o-1",
            "seq": 3,
            "rollup": status,
            "skus": {
                "sku-1": {
                    "status": status,
                    "stage_times": stage_times,
                    "destination": STOP,
                    "position": {"lat": last[0], "lon": last[1], "time": last[2]},
                }
            },
            "extensions": {"trail": {"sku-1": trail}},
        }
    )


TRAIL = [
    [30.27412, 120.15514, _iso(0)],
    [30.27433, 120.15561, _iso(20)],  # at the hub
    [30.26801, 120.15902, _iso(40)],
    [30.26102, 120.16233, _iso(50)],
]  # with the courier


def test_out_for_delivery_route_is_precise_since_it_left_and_coarse_before() -> None:
    sku = customer_view(_snapshot("out_for_delivery", TRAIL))["skus"]["sku-1"]
    # The two hub fixes coarsen to the same ~1 km point (merged); the courier's are precise.
    assert sku["route"] == [[30.27, 120.16], [30.26801, 120.15902], [30.26102, 120.16233]]
    assert sku["position"]["precise"] is True


def test_before_the_last_mile_the_whole_route_is_coarse() -> None:
    sku = customer_view(_snapshot("hub_arrival", TRAIL[:2], out_at=None))["skus"]["sku-1"]
    assert sku["route"] == [[30.27, 120.16]]


def test_destination_is_the_city_seat_never_the_stop() -> None:
    sku = customer_view(_snapshot("out_for_delivery", TRAIL))["skus"]["sku-1"]
    dest = sku["city"]
    assert dest["adcode"] == "330100"  # Hangzhou
    assert (dest["lat"], dest["lon"]) != (STOP["lat"], STOP["lon"])
    assert abs(dest["lat"] - STOP["lat"]) + abs(dest["lon"] - STOP["lon"]) > 0.01
    assert "30.25873" not in str(customer_view(_snapshot("out_for_delivery", TRAIL)))


def test_delivered_shows_no_route_and_no_destination() -> None:
    sku = customer_view(_snapshot("delivered", TRAIL))["skus"]["sku-1"]
    assert sku["position"] is None and "route" not in sku and "city" not in sku


def test_malformed_trail_points_are_skipped() -> None:
    bad = [[30.1, 120.1], ["x", 120.1, _iso(1)], [95.0, 120.1, _iso(2)], [30.2, 120.2, None], *TRAIL[2:]]
    sku = customer_view(_snapshot("out_for_delivery", bad))["skus"]["sku-1"]
    assert sku["route"] == [[30.26801, 120.15902], [30.26102, 120.16233]]


def test_the_marker_is_the_geo_stages_wgs84_fix_of_a_gcj02_event() -> None:
    # The event came in GCJ-02 (an AMap SDK); the worker's trail holds its WGS-84 fix.
    wgs = (30.26102, 120.16233)
    gcj_lon, gcj_lat = wgs84_to_gcj02(wgs[1], wgs[0])
    snapshot = _snapshot("out_for_delivery", [*TRAIL[:3], [wgs[0], wgs[1], _iso(50)]])
    raw = snapshot.model_dump(mode="json")
    raw["skus"]["sku-1"]["position"] = {"lat": gcj_lat, "lon": gcj_lon, "time": _iso(50)}
    sku = customer_view(OrderSnapshot.model_validate(raw))["skus"]["sku-1"]
    assert (sku["position"]["lat"], sku["position"]["lon"]) == wgs


def _fix(lat: float, lon: float) -> GeoFix:
    return GeoFix(lat, lon, None, ())


def _ns(minutes: float) -> int:
    return int((T0 + timedelta(minutes=minutes)).timestamp() * 1e9)


def test_trail_is_ordered_by_event_time_and_merges_standing_still() -> None:
    trail = extend_trail([], [(_ns(10), _fix(30.2, 120.2)), (_ns(0), _fix(30.1, 120.1))])
    trail = extend_trail(trail, [(_ns(5), _fix(30.15, 120.15)), (_ns(12), _fix(30.2, 120.2))])
    assert [p[:2] for p in trail] == [[30.1, 120.1], [30.15, 120.15], [30.2, 120.2]]
    assert trail[-1][2] == _iso(12)  # standing still: one point, the newest time


def test_trail_is_bounded_by_count_and_age() -> None:
    many = [(_ns(i), _fix(30 + i / 1000, 120.0)) for i in range(TRAIL_MAX_POINTS + 30)]
    trail = extend_trail([], many)
    assert len(trail) == TRAIL_MAX_POINTS and trail[-1][0] == round(30 + (TRAIL_MAX_POINTS + 29) / 1000, 5)
    # The newest fix 115 min after minute 79: minutes 74..79 are within two hours of it.
    late = extend_trail(trail, [(_ns(79 + TRAIL_WINDOW_S / 60 - 5), _fix(31.0, 121.0))])
    assert [p[2] for p in late[:-1]] == [_iso(m) for m in range(74, 80)]
