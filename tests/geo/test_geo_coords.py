"""GCJ-02 / BD-09 <-> WGS-84 against published reference pairs and by round trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.coords import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    bd09_to_wgs84_arrays,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    gcj02_to_wgs84_arrays,
    in_china_bbox,
    to_wgs84,
    to_wgs84_arrays,
    wgs84_to_bd09,
    wgs84_to_gcj02,
    wgs84_to_gcj02_arrays,
)
from geo.distance import haversine_m
from stream.contract import Crs

# (wgs lon, wgs lat, gcj lon, gcj lat): the test pairs published with googollee/eviltransform
# (Shanghai, Shenzhen, Beijing) and wandergis/coordtransform (Beijing, wgs84togcj02).
GCJ_PAIRS = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),
    (116.404, 39.915, 116.41024449916938, 39.91640428150164),
]


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), GCJ_PAIRS)
def test_wgs84_to_gcj02_matches_published_pairs(wlon: float, wlat: float, glon: float, glat: float) -> None:
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert lon == pytest.approx(glon, abs=1e-9)
    assert lat == pytest.approx(glat, abs=1e-9)


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), GCJ_PAIRS)
def test_gcj02_to_wgs84_inverts_published_pairs_to_1e6_degrees(
    wlon: float, wlat: float, glon: float, glat: float
) -> None:
    lon, lat = gcj02_to_wgs84(glon, glat)
    assert lon == pytest.approx(wlon, abs=1e-6)
    assert lat == pytest.approx(wlat, abs=1e-6)
    assert haversine_m(lon, lat, wlon, wlat) < 0.5
    # The offset being undone is real: hundreds of metres.
    assert haversine_m(glon, glat, wlon, wlat) > 100


def test_one_step_inverse_would_not_be_good_enough() -> None:
    # The common approximation (gcj - offset(gcj)) is off by metres; ours is not.
    wlon, wlat, glon, glat = GCJ_PAIRS[0]
    dlon, dlat = glon - wgs84_to_gcj02(glon, glat)[0], glat - wgs84_to_gcj02(glon, glat)[1]
    approx = (glon + dlon, glat + dlat)
    exact = gcj02_to_wgs84(glon, glat)
    assert haversine_m(*approx, wlon, wlat) > 0.5
    assert haversine_m(*exact, wlon, wlat) < 0.001


def test_bd09_matches_published_forward_and_inverts_exactly() -> None:
    # wandergis/coordtransform: gcj02tobd09(116.404, 39.915) and its approximate bd09togcj02.
    assert gcj02_to_bd09(116.404, 39.915) == pytest.approx((116.41036949371029, 39.92133699351021), abs=1e-9)
    approx_inverse = (116.39762729119315, 39.90865673957631)
    exact = bd09_to_gcj02(116.404, 39.915)
    assert exact == pytest.approx(approx_inverse, abs=1e-6)
    assert gcj02_to_bd09(*exact) == pytest.approx((116.404, 39.915), abs=1e-9)


china_lon = st.floats(min_value=73.5, max_value=134.8)
china_lat = st.floats(min_value=18.2, max_value=53.5)


@settings(max_examples=300, deadline=None)
@given(china_lon, china_lat)
def test_gcj02_round_trip_is_below_half_a_metre(lon: float, lat: float) -> None:
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert haversine_m(*back, lon, lat) < 0.5
    assert back == pytest.approx((lon, lat), abs=1e-8)


@settings(max_examples=200, deadline=None)
@given(china_lon, china_lat)
def test_bd09_round_trip_is_below_half_a_metre(lon: float, lat: float) -> None:
    back = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert haversine_m(*back, lon, lat) < 0.5


def test_outside_china_gcj02_is_wgs84() -> None:
    for lon, lat in [(2.35, 48.85), (-46.6, -23.5), (139.0, 60.0), (60.0, 30.0)]:
        assert not in_china_bbox(lon, lat)
        assert wgs84_to_gcj02(lon, lat) == (lon, lat)
        assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_array_variants_equal_the_scalar_ones() -> None:
    rng = np.random.default_rng(3)
    lons = np.r_[rng.uniform(73, 135, 200), [2.35, -46.6]]
    lats = np.r_[rng.uniform(18, 53, 200), [48.85, -23.5]]
    gx, gy = wgs84_to_gcj02_arrays(lons, lats)
    wx, wy = gcj02_to_wgs84_arrays(gx, gy)
    for i in range(lons.size):
        assert (gx[i], gy[i]) == pytest.approx(wgs84_to_gcj02(lons[i], lats[i]), abs=1e-12)
        assert (wx[i], wy[i]) == pytest.approx(gcj02_to_wgs84(gx[i], gy[i]), abs=1e-9)
    assert np.max(haversine_m(wx, wy, lons, lats)) < 0.01
    bx, by = bd09_to_wgs84_arrays(lons, lats)
    assert (bx[0], by[0]) == pytest.approx(bd09_to_wgs84(lons[0], lats[0]), abs=1e-9)


def test_to_wgs84_dispatches_on_the_event_crs() -> None:
    wlon, wlat, glon, glat = GCJ_PAIRS[1]
    assert to_wgs84(wlon, wlat, Crs.WGS84) == (wlon, wlat)
    assert to_wgs84(glon, glat, Crs.GCJ02) == pytest.approx((wlon, wlat), abs=1e-8)
    blon, blat = gcj02_to_bd09(glon, glat)
    assert to_wgs84(blon, blat, Crs.BD09) == pytest.approx((wlon, wlat), abs=1e-8)
    xs, ys = to_wgs84_arrays([blon], [blat], Crs.BD09)
    assert (xs[0], ys[0]) == pytest.approx((wlon, wlat), abs=1e-8)


def test_mismatched_array_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        gcj02_to_wgs84_arrays([1.0, 2.0], [1.0])
