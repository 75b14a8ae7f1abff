"""Re-derive the shipped boundary files from the shared test data (see SOURCE.md).

Run from the repository root: ``python geo/data/derive_boundaries.py [BOUNDARIES_DIR]``
(default ``/work/shared/data/boundaries``). Not imported by the package; kept so the
derivation can be repeated and reviewed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path("/work/shared/data/boundaries")

#: World features the China file supplies instead: China, Taiwan, Hong Kong, Macao.
WORLD_CODES_FROM_CHINA_FILE = {"156", "158", "344", "446"}
#: About 2 km: far below the 30 km coastline tolerance of the region lookup.
WORLD_SIMPLIFY_DEG = 0.02
#: The China source is quantised to 1/1024 degree (~100 m); 5 decimals keep it.
CHINA_DECIMALS = 5
WORLD_DECIMALS = 4


def _shifted_east(degrees: float) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """A ``shapely.transform`` function moving x/y coordinates ``degrees`` east."""
    offset = np.array([degrees, 0.0])
    return lambda coords: coords + offset


def _polygon_parts(geom: Any) -> list[Any]:
    """Polygons inside ``geom``, descending into collections (make_valid emits lines too)."""
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type == "Polygon":
        return [geom]
    if hasattr(geom, "geoms"):
        return [part for sub in geom.geoms for part in _polygon_parts(sub)]
    return []


def _unwrapped_ring(coords: np.ndarray) -> tuple[Any, bool]:
    """A ring with continuous longitudes, closed over the pole if it winds round it."""
    x = np.unwrap(coords[:, 0], period=360.0)
    ring = np.column_stack([x, coords[:, 1]])
    winds = abs(x[-1] - x[0]) > 180.0
    if winds:
        pole = -90.0 if coords[:, 1].mean() < 0 else 90.0
        ring = np.vstack([ring, [[x[-1], pole], [x[0], pole]]])
    return shapely.make_valid(shapely.Polygon(ring)), winds


def _split_antimeridian(geom: Any) -> Any:
    """Rebuild polygon parts whose rings jump across the antimeridian (Russia, Fiji,
    Antarctica in world-atlas): as shipped, make_valid turns them into bands round the globe.

    Rings are unwrapped to continuous longitudes; a ring winding round a pole is closed over
    it and taken as a shell even where the conversion stored it as a hole (Antarctica's coast
    is the hole of a zero-area ring along -89.999). The result is cut into [-180, 180]
    windows and shifted back.
    """
    fixed = []
    for part in shapely.get_parts(geom):
        rings = [part.exterior, *part.interiors]
        if not any(np.any(np.abs(np.diff(np.asarray(r.coords)[:, 0])) > 180.0) for r in rings):
            fixed.append(part)
            continue
        shells: list[Any] = []
        holes: list[Any] = []
        for number, ring in enumerate(rings):
            shape, winds = _unwrapped_ring(np.asarray(ring.coords))
            (shells if winds or number == 0 else holes).append(shape)
        shape = shapely.union_all(shells)
        for hole in holes:  # tried at each 360-degree shift: unwrapping may offset it
            for k in (-360.0, 0.0, 360.0):
                shape = shapely.difference(shape, shapely.transform(hole, _shifted_east(k)))
        for k in range(-2, 3):
            window = shapely.box(-180.0 + 360.0 * k, -90.0, 180.0 + 360.0 * k, 90.0)
            piece = shapely.transform(shapely.intersection(shape, window), _shifted_east(-360.0 * k))
            fixed.extend(_polygon_parts(piece))
    return shapely.make_valid(shapely.multipolygons(fixed))


def _clean(geoms: np.ndarray, decimals: int) -> list[Any]:
    out = []
    for geom in shapely.make_valid(shapely.set_precision(geoms, 10.0**-decimals)):
        parts = _polygon_parts(geom)
        out.append(shapely.multipolygons(parts) if parts else None)
    return out


def _write(path: Path, frame: gpd.GeoDataFrame, props: list[str], decimals: int) -> None:
    def rounded(coords: Any) -> Any:
        if isinstance(coords[0], (int, float)):
            return [round(float(c), decimals) for c in coords]
        return [rounded(c) for c in coords]

    features = []
    for row in frame.itertuples(index=False):
        geom = shapely.geometry.mapping(row.geometry)
        features.append(
            {
                "type": "Feature",
                "properties": {p: getattr(row, p) for p in props},
                "geometry": {"type": geom["type"], "coordinates": rounded(geom["coordinates"])},
            }
        )
    text = json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, separators=(",", ":"))
    path.write_text(text + "\n", encoding="utf-8")


def derive(source: Path) -> None:
    china = gpd.read_file(source / "china" / "china_provinces.geojson")
    china["adcode"] = china["adcode"].astype(str)
    china["geometry"] = _clean(china.geometry.values, CHINA_DECIMALS)
    _write(HERE / "china_provinces.geojson", china, ["adcode", "name", "name_en"], CHINA_DECIMALS)

    world = gpd.read_file(source / "world" / "countries-50m.geojson")
    world = world[~world["iso_n3"].isin(WORLD_CODES_FROM_CHINA_FILE)].copy()
    world["iso_n3"] = world["iso_n3"].astype(object).where(world["iso_n3"].notna(), None)
    repaired = [shapely.multipolygons(_polygon_parts(_split_antimeridian(g))) for g in world.geometry.values]
    simplified = shapely.simplify(np.array(repaired), WORLD_SIMPLIFY_DEG, preserve_topology=True)
    world["geometry"] = _clean(simplified, WORLD_DECIMALS)
    world = world[world.geometry.notna()]
    _write(HERE / "world_countries.geojson", world, ["iso_n3", "name"], WORLD_DECIMALS)


if __name__ == "__main__":
    derive(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE)
