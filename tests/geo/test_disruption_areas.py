"""Declared disruption zones (polygon, H3 cells, regions) against SKU positions. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import h3

from geo.disruption_areas import DisruptionArea, Positions
from geo.disruptions import DisruptionReason

AT = datetime(2026, 9, 14, 6, 0, tzinfo=UTC)
# A box around Ningbo and Zhoushan (a typhoon making landfall), WGS-84 lon/lat.
BOX = {"type": "Polygon", "coordinates": [[[121.0, 29.5], [122.5, 29.5], [122.5, 30.3], [121.0, 30.3], [121.0, 29.5]]]}
POSITIONS = Positions(
    keys=["o1|ningbo", "o2|zhoushan", "o3|shanghai", "o4|hangzhou"],
    lats=[29.8683, 29.9853, 31.2304, 30.2741],
    lons=[121.5440, 122.2072, 121.4737, 120.1551],
    regions=["330000", "330000", "310000", "330000"],
)


def item(**where: object) -> dict[str, object]:
    return {
        "disruption_id": "dz-1",
        "name": "台风 Bebinca",
        "reason": "typhoon",
        "ends_at": (AT + timedelta(hours=12)).isoformat(),
        **where,
    }


def test_a_polygon_hits_exactly_the_positions_inside() -> None:
    zone = DisruptionArea.from_item(item(geometry=BOX))
    assert zone.reason is DisruptionReason.TYPHOON and zone.customer_reason == "weather"
    assert zone.hits(POSITIONS) == {"o1|ningbo", "o2|zhoushan"}


def test_h3_cells_hit_at_their_own_resolution() -> None:
    cell = h3.latlng_to_cell(29.8683, 121.5440, 6)
    zone = DisruptionArea.from_item(item(h3_cells=[cell]))
    assert zone.hits(POSITIONS) == {"o1|ningbo"}


def test_regions_hit_by_code() -> None:
    zone = DisruptionArea.from_item(item(regions=["310000"]))
    assert zone.hits(POSITIONS) == {"o3|shanghai"}


def test_validity_window_and_unknown_reasons() -> None:
    zone = DisruptionArea.from_item(item(geometry=BOX, reason="flood", starts_at=(AT + timedelta(hours=1)).isoformat()))
    assert zone.reason is DisruptionReason.OTHER and zone.customer_reason == "other"
    assert not zone.is_active(AT)
    assert zone.is_active(AT + timedelta(hours=2))
    assert not zone.is_active(AT + timedelta(hours=12))


def test_no_positions_no_hits() -> None:
    assert DisruptionArea.from_item(item(geometry=BOX)).hits(Positions([], [], [], [])) == set()
