"""Real courier GPS (Cainiao LaDe-D, Jilin): 500 m delivery-stop fences vs haversine."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.distance import haversine_m
from geo.fence_files import load_geofence_index
from geo.fence_shapes import geodesic_circles

LADE_EVENTS = Path("/work/shared/data/events/lade/lade_d_jilin_events.csv")
RADIUS_M = 500.0


@pytest.fixture(scope="module")
def delivered() -> pd.DataFrame:
    events = pd.read_csv(LADE_EVENTS, dtype={"package_id": str})
    rows = events[events["event_type"] == "delivered"].reset_index(drop=True)
    assert len(rows) == 213 and rows["package_id"].is_unique
    return rows


def test_delivery_stop_fences_classify_every_fix_like_haversine(delivered: pd.DataFrame, tmp_path: Path) -> None:
    # A 500 m fence around each stop, written as a real layer file and loaded through the
    # same path as production fences.
    circles = geodesic_circles(delivered["dest_lon"], delivered["dest_lat"], RADIUS_M)
    gpd.GeoDataFrame({"package_id": delivered["package_id"], "geometry": circles}, crs="EPSG:4326").to_file(
        tmp_path / "stops.geojson", driver="GeoJSON"
    )
    config = tmp_path / "geofences.yaml"
    config.write_text(
        "layers:\n  - {name: stops, path: stops.geojson, kind: delivery_stop, id_field: package_id}\n",
        encoding="utf-8",
    )
    index = load_geofence_index(config)
    assert len(index) == 213

    fences_per_fix = index.lookup(delivered["lon"], delivered["lat"])
    inside = np.array([pkg in ids for pkg, ids in zip(delivered["package_id"], fences_per_fix, strict=True)])
    distance = haversine_m(delivered["lon"], delivered["lat"], delivered["dest_lon"], delivered["dest_lat"])

    assert (inside == (distance <= RADIUS_M)).all()
    assert int((~inside).sum()) == int((distance > RADIUS_M).sum()) == 25
    assert int(inside.sum()) == 188
    assert 50 < float(np.median(distance)) < 60  # README: median 56 m


def test_circle_boundary_matches_haversine_within_tolerance() -> None:
    # Points at haversine distance 500 m +- 4 m in every direction around a Jilin stop: the
    # ellipsoid/sphere difference (<0.5 %, 2.5 m) plus chord error (0.6 m) stays below 4 m.
    lon0, lat0 = 126.55021, 43.90465
    circle = geodesic_circles([lon0], [lat0], RADIUS_M)[0]
    bearings = np.radians(np.arange(0, 360, 7.5))
    for metres, expect_inside in ((RADIUS_M - 4.0, True), (RADIUS_M + 4.0, False)):
        dlat = np.degrees(metres * np.cos(bearings) / 6_371_008.8)
        lat = lat0 + dlat
        dlon = np.degrees(metres * np.sin(bearings) / (6_371_008.8 * np.cos(np.radians(lat0))))
        lon = lon0 + dlon
        # Nudge onto the exact haversine distance (the flat-earth offsets above are approximate).
        scale = metres / haversine_m(lon0, lat0, lon, lat)
        lon, lat = lon0 + (lon - lon0) * scale, lat0 + (lat - lat0) * scale
        assert np.allclose(haversine_m(lon0, lat0, lon, lat), metres, atol=0.05)
        assert (shapely.intersects_xy(circle, lon, lat) == expect_inside).all()
