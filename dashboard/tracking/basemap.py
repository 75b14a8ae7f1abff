"""The tracking map's basemap: province boundaries as small SVG paths in Web Mercator.

The page draws its map as inline SVG (no tile server, no map library), so the boundaries
are pre-simplified once into ``static/basemap.json``. Coordinates are Web Mercator "world
units" at zoom 0 (the world is 256 x 256, like slippy-map tiles), so raster tiles, when
configured, line up with the same transform. Run ``python -m dashboard.tracking.basemap``
to regenerate the file after the boundary data changes; a test checks it is current.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypedDict

import orjson
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

#: Source boundaries (owned by geo/; read only).
SOURCE = Path(__file__).resolve().parents[2] / "geo" / "data" / "china_provinces.geojson"
TARGET = Path(__file__).resolve().parent / "static" / "basemap.json"

#: ``coverage_simplify`` tolerance in degrees (~10 km): a phone never shows province borders
#: sharper, and the file stays ~20 KB compressed.
TOLERANCE_DEG = 0.1
#: Decimals of world units kept (0.001 unit ~ 150 m at the equator).
DECIMALS = 3
WORLD = 256.0
_MAX_LAT = 85.0511287798


def mercator(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 degrees to Web Mercator world units at zoom 0 (y grows southwards)."""
    lat = max(-_MAX_LAT, min(_MAX_LAT, lat))
    x = (lon + 180.0) / 360.0 * WORLD
    s = math.sin(math.radians(lat))
    y = (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * WORLD
    return x, y


def _ring_path(coords: Sequence[tuple[float, ...]]) -> str:
    """One closed ring as relative SVG path commands on the rounded integer grid."""
    scale = 10**DECIMALS
    points = [mercator(c[0], c[1]) for c in coords[:-1]]
    grid = [(round(x * scale), round(y * scale)) for x, y in points]
    deduped = [p for i, p in enumerate(grid) if i == 0 or p != grid[i - 1]]
    if len(deduped) < 3:
        return ""
    parts = [f"M{_num(deduped[0][0], scale)} {_num(deduped[0][1], scale)}l"]
    steps = []
    for (x0, y0), (x1, y1) in zip(deduped, deduped[1:]):
        steps.append(f"{_num(x1 - x0, scale)} {_num(y1 - y0, scale)}")
    # SVG needs no separator before a minus sign.
    parts.append(" ".join(steps).replace(" -", "-"))
    parts.append("z")
    return "".join(parts)


def _num(value: int, scale: int) -> str:
    text = f"{value / scale:.{DECIMALS}f}".rstrip("0").rstrip(".")
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


def _polygons(geometry: shapely.Geometry) -> Iterable[Polygon]:
    if isinstance(geometry, Polygon):
        yield geometry
    elif isinstance(geometry, MultiPolygon):
        yield from geometry.geoms


class Province(TypedDict):
    adcode: str
    name: str
    name_en: str
    label: list[float]
    d: str


class Basemap(TypedDict):
    projection: str
    tolerance_deg: float
    bounds: list[float]
    provinces: list[Province]


def build_basemap(geojson: bytes, tolerance_deg: float = TOLERANCE_DEG) -> Basemap:
    """Simplified province outlines; shared borders stay shared (coverage simplification)."""
    features = orjson.loads(geojson)["features"]
    geometries = [shape(f["geometry"]) for f in features]
    simplified = shapely.coverage_simplify(geometries, tolerance_deg)
    min_area = tolerance_deg * tolerance_deg * 4  # islets below the tolerance are noise here
    provinces: list[Province] = []
    for feature, geometry in zip(features, simplified):
        rings = [_ring_path(list(p.exterior.coords)) for p in _polygons(geometry) if p.area >= min_area]
        d = "".join(r for r in rings if r)
        if d:
            props = feature["properties"]
            # Label at a point inside the largest part (a centroid may fall outside, e.g. Gansu).
            largest = max(_polygons(geometry), key=lambda p: p.area)
            point = largest.representative_point()
            lx, ly = mercator(point.x, point.y)
            provinces.append({"adcode": props["adcode"], "name": props["name"], "name_en": props["name_en"],
                              "label": [round(lx, DECIMALS), round(ly, DECIMALS)], "d": d})
    xs, ys = zip(*(mercator(*c) for c in ((73.0, 54.0), (135.5, 18.0))))
    return {
        "projection": "web-mercator-zoom0-256",
        "tolerance_deg": tolerance_deg,
        "bounds": [min(xs), min(ys), max(xs), max(ys)],
        "provinces": provinces,
    }


def render(source: Path = SOURCE) -> bytes:
    return orjson.dumps(build_basemap(source.read_bytes()), option=orjson.OPT_APPEND_NEWLINE)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="regenerate the tracking page's basemap")
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--target", type=Path, default=TARGET)
    args = parser.parse_args(argv)
    data = render(args.source)
    args.target.write_bytes(data)
    print(f"wrote {args.target} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
