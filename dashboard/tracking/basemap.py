"""The tracking map's geometry: Web Mercator world units and compact SVG paths.

The page draws its map as inline SVG (no map library): boundaries are pre-simplified into
SVG paths (:mod:`dashboard.tracking.areas`) in Web Mercator "world units" at zoom 0 (the
world is 256 x 256, like slippy-map tiles), so raster tiles, when configured, line up with
the same transform.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

from shapely.geometry import MultiPolygon, Polygon

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


def ring_path(coords: Sequence[tuple[float, ...]]) -> str:
    """One closed ring as relative SVG path commands on the rounded integer grid."""
    scale = 10**DECIMALS
    points = [mercator(c[0], c[1]) for c in coords[:-1]]
    grid = [(round(x * scale), round(y * scale)) for x, y in points]
    deduped = [p for i, p in enumerate(grid) if i == 0 or p != grid[i - 1]]
    if len(deduped) < 3:
        return ""
    parts = [f"M{_num(deduped[0][0], scale)} {_num(deduped[0][1], scale)}l"]
    steps = []
    for (x0, y0), (x1, y1) in itertools.pairwise(deduped):
        steps.append(f"{_num(x1 - x0, scale)} {_num(y1 - y0, scale)}")
    # SVG needs no separator before a minus sign.
    parts.append(" ".join(steps).replace(" -", "-"))
    parts.append("z")
    return "".join(parts)


def _num(value: int, scale: int) -> str:
    text = f"{value / scale:.{DECIMALS}f}".rstrip("0").rstrip(".")
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


def polygons(geometry: object) -> Iterable[Polygon]:
    if isinstance(geometry, Polygon):
        yield geometry
    elif isinstance(geometry, MultiPolygon):
        yield from geometry.geoms
