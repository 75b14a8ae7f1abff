"""Building fence polygons from a centre and a radius in metres.

A "500 m around the delivery stop" fence must be 500 m in every direction, which a circle
in degrees is not (a degree of longitude shrinks with latitude). The vertices are therefore
placed by solving the direct geodesic problem (pyproj ``Geod.fwd``, vectorised over every
centre and bearing at once) at the exact distance from the centre, so membership agrees with
a great-circle distance test up to the polygon's chord error (radius * (1 - cos(pi/segments)),
0.6 m for 500 m and 64 segments) plus the ellipsoid/sphere difference (< 0.5 %).
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import Geod

#: The WGS-84 ellipsoid, on which GPS positions live.
WGS84_GEOD = Geod(ellps="WGS84")
DEFAULT_SEGMENTS = 64


def geodesic_circles(
    lons: ArrayLike,
    lats: ArrayLike,
    radius_m: float | ArrayLike,
    segments: int = DEFAULT_SEGMENTS,
    geod: Geod = WGS84_GEOD,
) -> NDArray[np.object_]:
    """One polygon per centre: ``segments`` vertices at ``radius_m`` metres from it.

    Longitudes are kept continuous around the centre, so a circle crossing the antimeridian
    has vertices beyond +-180 rather than wrapping (split it if that matters to you).
    """
    x = np.asarray(lons, dtype=np.float64).ravel()
    y = np.asarray(lats, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"lons and lats differ in length: {x.size} vs {y.size}")
    radius = np.broadcast_to(np.asarray(radius_m, dtype=np.float64), x.shape)
    if np.any(~np.isfinite(radius)) or np.any(radius <= 0):
        raise ValueError("radius_m must be positive and finite")
    if segments < 8:
        raise ValueError(f"segments must be at least 8, got {segments}")
    n = x.size
    bearings = np.linspace(0.0, 360.0, segments, endpoint=False)
    vx, vy, _ = geod.fwd(
        np.repeat(x, segments), np.repeat(y, segments), np.tile(bearings, n), np.repeat(radius, segments)
    )
    vx = np.asarray(vx, dtype=np.float64).reshape(n, segments)
    vy = np.asarray(vy, dtype=np.float64).reshape(n, segments)
    vx = x[:, None] + (vx - x[:, None] + 180.0) % 360.0 - 180.0  # continuous around the centre
    rings = np.stack([vx, vy], axis=-1)
    rings = np.concatenate([rings, rings[:, :1, :]], axis=1)  # close each ring
    circles: NDArray[np.object_] = np.asarray(shapely.polygons(rings), dtype=object)
    return circles
