"""Geo enrichment of a batch: CRS conversion, regions and heatmap cells (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import h3

from geo.coords import gcj02_to_wgs84
from stream.contract import Crs, OrderEvent, Status
from stream.stages.geo_stage import locate, tag_cell

AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def event(n: int, lat: float | None, lon: float | None, crs: Crs = Crs.WGS84) -> OrderEvent:
    return OrderEvent(
        event_id=f"e{n}",
        order_id=f"o{n}",
        sku="s",
        status=Status.PAID,
        event_time=AT,
        source="test",
        lat=lat,
        lon=lon,
        crs=crs,
    )


def test_positions_are_converted_per_crs_with_region_and_cells() -> None:
    fixes = locate(
        [
            event(1, 31.2304, 121.4737),
            event(2, None, None),
            event(3, 31.2304, 121.4737, Crs.GCJ02),
            event(4, -23.55, -46.63),
        ]
    )
    shanghai, missing, gcj, sao_paulo = fixes
    assert missing is None
    assert shanghai is not None and gcj is not None and sao_paulo is not None
    assert shanghai.region == "310000" and gcj.region == "310000"
    assert (gcj.lon, gcj.lat) == gcj02_to_wgs84(121.4737, 31.2304)
    assert abs(gcj.lat - shanghai.lat) > 1e-3  # the GCJ-02 offset is a few hundred metres
    assert shanghai.cell(5) == h3.latlng_to_cell(31.2304, 121.4737, 5) == tag_cell(31.2304, 121.4737)
    assert shanghai.cell(3) == h3.latlng_to_cell(31.2304, 121.4737, 3)
    assert sao_paulo.region == "076"  # Brazil, ISO 3166-1 numeric
