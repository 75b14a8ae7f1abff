"""Disruption zones: which in-flight SKUs they affect, and the book of active zones."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import shapely

from geo.disruptions import (
    DisruptionBook,
    DisruptionReason,
    DisruptionZone,
    DisruptionZoneError,
    PointSet,
    affected,
)

T0 = datetime(2026, 9, 1, tzinfo=timezone(timedelta(hours=8)))
# A typhoon over the Pearl River Delta, drawn as a rough square (lon 113-114.5, lat 22-23).
TYPHOON_GEOJSON = {
    "type": "Feature",
    "properties": {},
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[113, 22], [114.5, 22], [114.5, 23], [113, 23], [113, 22]]],
    },
}


def zone(zone_id: str = "typhoon-1", polygon: object = None, hours: int = 24) -> DisruptionZone:
    if polygon is None:
        return DisruptionZone.from_geojson(
            zone_id, TYPHOON_GEOJSON, "typhoon", T0, T0 + timedelta(hours=hours), "ops@cn"
        )
    return DisruptionZone(zone_id, polygon, DisruptionReason.ROAD_CLOSURE, T0, T0 + timedelta(hours=hours), "ops@cn")


POSITIONS = PointSet.from_mapping(
    {
        "inside": (113.26, 22.5),  # in Guangzhou's south, inside the zone
        "on-edge": (113.0, 22.5),  # on the boundary: counts as inside
        "crossing": (112.0, 22.5),  # west of it, heading east through it
        "arriving": (112.5, 22.8),  # heading into it (destination inside)
        "passing-by": (112.5, 22.9),  # bounding boxes overlap, but the leg misses the corner
        "far": (121.47, 31.23),  # Shanghai, heading to Beijing
        "no-target": (112.0, 22.4),  # outside, next leg unknown
    }
)
TARGETS = PointSet.from_mapping(
    {
        "crossing": (115.0, 22.5),
        "arriving": (113.5, 22.6),
        "passing-by": (113.5, 23.5),
        "far": (116.4, 39.9),
        "inside": (121.47, 31.23),
    }
)


def test_zone_marks_exactly_the_skus_inside_it() -> None:
    assert affected(zone(), POSITIONS) == {"inside", "on-edge"}


def test_next_leg_crossing_the_zone_counts_too() -> None:
    assert affected(zone(), POSITIONS, TARGETS) == {"inside", "on-edge", "crossing", "arriving"}


def test_targets_may_be_keyed_in_any_order_and_have_gaps() -> None:
    shuffled = PointSet(TARGETS.keys[::-1].copy(), TARGETS.lons[::-1].copy(), TARGETS.lats[::-1].copy())
    with_nan = PointSet.of(["crossing", "arriving"], [np.nan, 113.5], [22.5, 22.6])
    assert affected(zone(), POSITIONS, shuffled) == {"inside", "on-edge", "crossing", "arriving"}
    assert affected(zone(), POSITIONS, with_nan) == {"inside", "on-edge", "arriving"}


def test_vectorised_result_equals_a_per_sku_loop() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    keys = np.array([f"sku-{i}" for i in range(n)], dtype=object)
    pos = PointSet.of(keys, rng.uniform(110, 118, n), rng.uniform(20, 26, n))
    tgt = PointSet.of(keys, rng.uniform(110, 118, n), rng.uniform(20, 26, n))
    star = shapely.Polygon([(113, 21), (114, 23.5), (115, 21.5), (112.5, 22.8), (115.5, 22.8)]).convex_hull
    z = zone("star", star)
    expected = {
        k
        for k, x, y, tx, ty in zip(keys, pos.lons, pos.lats, tgt.lons, tgt.lats, strict=True)
        if star.intersects(shapely.Point(x, y)) or star.intersects(shapely.LineString([(x, y), (tx, ty)]))
    }
    got = affected(z, pos, tgt)
    assert got == expected
    assert 200 < len(got) < n  # both kinds of outcome occur


def test_book_add_withdraw_and_active_at() -> None:
    closure = zone("closure-1", shapely.box(112.9, 22.4, 113.1, 22.6), hours=2)
    book = DisruptionBook().add(zone(), POSITIONS, TARGETS).add(closure, POSITIONS, TARGETS)
    assert book.affected_by_zone["closure-1"] == {"on-edge", "crossing"}
    assert [z.id for z in book.active_at(T0)] == ["closure-1", "typhoon-1"]
    assert [z.id for z in book.active_at(T0 + timedelta(hours=3))] == ["typhoon-1"]
    assert book.active_at(T0 - timedelta(seconds=1)) == ()
    assert book.affected_at(T0) == {"inside", "on-edge", "crossing", "arriving"}
    assert book.zones_for("crossing", T0) == ("closure-1", "typhoon-1")

    # Withdrawing the typhoon clears its SKUs except those the closure still covers.
    result = book.withdraw("typhoon-1")
    assert result.cleared == {"inside", "arriving"}
    assert result.book.affected_at(T0) == {"on-edge", "crossing"}
    assert "typhoon-1" in book.zones  # the old book is unchanged
    final = result.book.withdraw("closure-1")
    assert final.cleared == {"on-edge", "crossing"} and final.book.affected_at(T0) == frozenset()
    assert final.book.withdraw("nope").cleared == frozenset()


def test_expire_withdraws_ended_zones() -> None:
    closure = zone("closure-1", shapely.box(112.9, 22.4, 113.1, 22.6), hours=2)
    book = DisruptionBook().add(zone(), POSITIONS).add(closure, POSITIONS)
    result = book.expire(T0 + timedelta(hours=2))
    assert list(result.book.zones) == ["typhoon-1"]
    assert result.cleared == frozenset()  # "on-edge" is still inside the typhoon
    assert book.expire(T0 + timedelta(days=2)).cleared == {"inside", "on-edge"}


def test_bad_zones_are_rejected() -> None:
    with pytest.raises(DisruptionZoneError, match="reason must be one of"):
        DisruptionZone.from_geojson("z", TYPHOON_GEOJSON, "aliens", T0, T0 + timedelta(hours=1), "me")
    with pytest.raises(DisruptionZoneError, match="valid_until must be after"):
        DisruptionZone.from_geojson("z", TYPHOON_GEOJSON, "typhoon", T0, T0, "me")
    with pytest.raises(DisruptionZoneError, match="needs a Polygon"):
        DisruptionZone.from_geojson(
            "z", '{"type": "Point", "coordinates": [1, 2]}', "other", T0, T0 + timedelta(hours=1), "me"
        )
    with pytest.raises(DisruptionZoneError, match="UTC offset"):
        DisruptionZone(
            "z",
            shapely.box(0, 0, 1, 1),
            DisruptionReason.OTHER,
            datetime(2026, 1, 1),
            datetime(2026, 1, 2),
            "me",
        )
    with pytest.raises(DisruptionZoneError, match="invalid polygon"):
        zone("z", shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]))
