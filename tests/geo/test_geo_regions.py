"""Province / country assignment from the shipped boundary files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from geo.distance import haversine_m
from geo.regions import (
    DATA_DIR,
    Region,
    RegionIndex,
    RegionKind,
    default_region_index,
    region_for,
    regions_for,
)

OLIST_EVENTS = Path("/work/shared/data/events/olist/olist_events.csv")
LADE_EVENTS = Path("/work/shared/data/events/lade/lade_d_jilin_events.csv")


@pytest.fixture(scope="module")
def strict_index() -> RegionIndex:
    """The same boundaries without coastline tolerance: shows which points are really outside."""
    return RegionIndex.load(tolerance_m=0.0)


@pytest.mark.parametrize(
    ("lon", "lat", "adcode", "name", "name_en"),
    [
        (126.5661, 43.8708, "220000", "吉林", "Jilin"),
        (121.47, 31.23, "310000", "上海", "Shanghai"),
        (116.40, 39.90, "110000", "北京", "Beijing"),
        (113.26, 23.13, "440000", "广东", "Guangdong"),
        (114.17, 22.30, "810000", "香港", "Hong Kong"),
        (113.55, 22.19, "820000", "澳门", "Macao"),
        (121.50, 25.03, "710000", "台湾", "Taiwan"),
        (87.62, 43.82, "650000", "新疆", "Xinjiang"),
    ],
)
def test_points_in_china_get_their_province_from_the_china_file(
    lon: float, lat: float, adcode: str, name: str, name_en: str
) -> None:
    region = region_for(lon, lat)
    assert region == Region(RegionKind.PROVINCE, adcode, name, name_en)
    assert region is not None and region.adcode == adcode


@pytest.mark.parametrize(
    ("lon", "lat", "code", "name"),
    [
        (2.35, 48.85, "250", "France"),
        (-46.63, -23.55, "076", "Brazil"),
        (-74.0, 40.7, "840", "United States of America"),
        (139.69, 35.69, "392", "Japan"),
        (100.0, 60.0, "643", "Russia"),
        (-175.0, 66.0, "643", "Russia"),  # east of the antimeridian: the repaired part
        (178.0, -17.8, "242", "Fiji"),
        (0.0, -80.0, "010", "Antarctica"),
    ],
)
def test_points_elsewhere_get_their_country(lon: float, lat: float, code: str, name: str) -> None:
    region = region_for(lon, lat)
    assert region is not None
    assert (region.kind, region.code, region.name_en) == (RegionKind.COUNTRY, code, name)
    assert region.adcode is None


def test_coastal_point_just_off_a_coarse_coastline_gets_the_nearest_region(strict_index: RegionIndex) -> None:
    # In the East China Sea off Shanghai's coast, and in the bay off Rio de Janeiro:
    # outside every polygon, but within the 30 km tolerance.
    for lon, lat, code in [(122.05, 31.2, "310000"), (-43.1, -23.05, "076")]:
        assert strict_index.region_for(lon, lat) is None
        region = region_for(lon, lat)
        assert region is not None and region.code == code


def test_points_far_at_sea_get_no_region() -> None:
    assert region_for(-40.0, 30.0) is None  # mid-Atlantic
    assert region_for(150.0, 30.0) is None  # north-west Pacific
    assert region_for(123.5, 31.0) is None  # East China Sea, ~150 km out
    assert region_for(0.0, 0.0) is None  # Gulf of Guinea


def test_tolerance_is_measured_in_metres_at_any_latitude() -> None:
    # One square "region" east of a meridian; points 29 km and 31 km west of its edge, at
    # the equator and at 60 degrees north (where a degree of longitude is half as long).
    square = Region(RegionKind.COUNTRY, "999", "Square", "Square")
    for lat in (0.0, 60.0):
        edge = shapely.box(10.0, lat - 1.0, 11.0, lat + 1.0)
        index = RegionIndex([square], [edge], tolerance_m=30_000.0)
        metres_per_deg = haversine_m(10.0, lat, 11.0, lat).item()
        near = 10.0 - 29_000.0 / metres_per_deg
        far = 10.0 - 31_000.0 / metres_per_deg
        assert index.region_for(near, lat) == square
        assert index.region_for(far, lat) is None


def test_overlapping_regions_prefer_the_earlier_one() -> None:
    first = Region(RegionKind.PROVINCE, "1", "一", "One")
    second = Region(RegionKind.COUNTRY, "2", "Two", "Two")
    index = RegionIndex([first, second], [shapely.box(0, 0, 2, 2), shapely.box(1, 0, 3, 2)])
    assert index.regions_for([0.5, 1.5, 2.5], [1, 1, 1]) == [first, first, second]


def test_batch_matches_scalar_and_handles_missing_coordinates() -> None:
    rng = np.random.default_rng(7)
    lons = np.r_[rng.uniform(70, 135, 300), rng.uniform(-180, 180, 300), [np.nan, 10.0]]
    lats = np.r_[rng.uniform(18, 53, 300), rng.uniform(-60, 75, 300), [10.0, np.nan]]
    batch = regions_for(lons, lats)
    assert batch[-2:] == [None, None]
    assert batch == [region_for(float(x), float(y)) for x, y in zip(lons, lats, strict=True)]
    assert sum(r is not None and r.kind is RegionKind.PROVINCE for r in batch) > 100


def test_every_lade_courier_fix_is_in_jilin() -> None:
    events = pd.read_csv(LADE_EVENTS)
    located = events.dropna(subset=["lat", "lon"])
    codes = {r.code if r else None for r in regions_for(located["lon"], located["lat"])}
    assert len(located) == 391
    assert codes == {"220000"}


def test_olist_customer_points_are_in_brazil_including_the_coastal_ones(strict_index: RegionIndex) -> None:
    events = pd.read_csv(OLIST_EVENTS, dtype=str)
    points = events.dropna(subset=["lat", "lon"])[["lon", "lat", "zip_prefix"]].drop_duplicates()
    lons, lats = points["lon"].astype(float).to_numpy(), points["lat"].astype(float).to_numpy()
    names = [r.name_en if r else None for r in regions_for(lons, lats)]
    strict = strict_index.regions_for(lons, lats)
    outside_polygons = sum(r is None for r in strict)
    by_zip = dict(zip(points["zip_prefix"], names, strict=True))
    # Zip prefix 83252 is geolocated in Spain in Olist's own table (a known data error).
    assert by_zip["83252"] == "Spain"
    assert all(name == "Brazil" for zip_prefix, name in by_zip.items() if zip_prefix != "83252")
    assert outside_polygons > 50  # the coastal ones: the tolerance did real work


def test_shipped_boundary_files_are_valid_and_carry_their_licences() -> None:
    for name in (
        "LICENSE-echarts-Apache-2.0.txt",
        "NOTICE-echarts.txt",
        "LICENSE-world-atlas-ISC.txt",
        "SOURCE.md",
    ):
        assert (DATA_DIR / name).is_file(), name
    index = default_region_index()
    provinces = [r for r in index.regions if r.kind is RegionKind.PROVINCE]
    countries = [r for r in index.regions if r.kind is RegionKind.COUNTRY]
    assert len(provinces) == 34 and len({r.code for r in provinces}) == 34
    assert {"156", "158", "344", "446"}.isdisjoint(r.code for r in countries)
    assert len(countries) == 237
    size = sum((DATA_DIR / f).stat().st_size for f in ("china_provinces.geojson", "world_countries.geojson"))
    assert size < 1_500_000
    assert math.isclose(index.tolerance_m, 30_000.0)
