"""Re-derive the shipped boundary files from /work/shared/data/boundaries (see SOURCE.md).

Run from the repository root: ``python geo/data/derive_boundaries.py [SHARED_BOUNDARIES_DIR]``.
Not imported by the package; kept so the derivation can be repeated and reviewed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import shapely

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path("/work/shared/data/boundaries")

#: Features the China file supplies instead: China, Taiwan, Hong Kong, Macao.
WORLD_CODES_FROM_CHINA_FILE = {"156", "158", "344", "446"}
WORLD_SIMPLIFY_DEG = 0.01  # about 1 km: far below the 30 km coastline tolerance
CHINA_GRID_DEG = 1e-5  # the source is quantised to 1/1024 degree; 1e-5 keeps it
WORLD_GRID_DEG = 1e-4


def _polygonal(geoms: gpd.GeoSeries) -> gpd.GeoSeries:
    """make_valid, keeping only polygon parts (repairs can emit stray lines)."""
    fixed = shapely.make_valid(geoms.values)
    parts = shapely.get_parts(fixed)
    owners = shapely.get_parts(fixed, return_index=True)[1]
    keep = shapely.get_type_id(parts) == shapely.GeometryType.POLYGON
    out = []
    for i in range(len(fixed)):
        mine = parts[keep & (owners == i)]
        out.append(shapely.multipolygons(mine))
    return gpd.GeoSeries(out, crs=geoms.crs, index=geoms.index)


def derive(source: Path) -> None:
    china = gpd.read_file(source / "china" / "china_provinces.geojson")
    china = china[["adcode", "name", "name_en", "geometry"]].copy()
    china["adcode"] = china["adcode"].astype(str)
    china["geometry"] = _polygonal(
        gpd.GeoSeries(shapely.set_precision(china.geometry.values, CHINA_GRID_DEG), crs=china.crs)
    ).values
    china.to_file(HERE / "china_provinces.geojson", driver="GeoJSON", COORDINATE_PRECISION=5)

    world = gpd.read_file(source / "world" / "countries-50m.geojson")
    world = world[~world["iso_n3"].isin(WORLD_CODES_FROM_CHINA_FILE)]
    world = world[["iso_n3", "name", "geometry"]].copy()
    repaired = _polygonal(world.geometry)
    simplified = shapely.simplify(repaired.values, WORLD_SIMPLIFY_DEG, preserve_topology=True)
    gridded = shapely.set_precision(simplified, WORLD_GRID_DEG)
    world["geometry"] = _polygonal(gpd.GeoSeries(gridded, crs=world.crs)).values
    world = world[~world.geometry.is_empty]
    world.to_file(HERE / "world_countries.geojson", driver="GeoJSON", COORDINATE_PRECISION=4)


if __name__ == "__main__":
    derive(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE)
