"""Great-circle distance on the mean Earth sphere (haversine), vectorised.

Used where metres matter but sub-percent accuracy does not: the coastline tolerance of the
region lookup, and as the reference the delivery-stop geofences are checked against.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: IUGG mean Earth radius in metres.
EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> NDArray[np.float64]:
    """Distance in metres between (lon1, lat1) and (lon2, lat2); inputs broadcast."""
    phi1 = np.radians(np.asarray(lat1, dtype=np.float64))
    phi2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dphi = phi2 - phi1
    dlam = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    h = np.sin(dphi / 2.0) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2.0) ** 2
    return np.asarray(2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), dtype=np.float64)
