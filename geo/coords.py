"""Chinese map coordinate systems (GCJ-02, BD-09) to and from WGS-84.

Chinese map services publish positions in GCJ-02 ("Mars coordinates": WGS-84 plus a
deliberate, smoothly varying offset of a few hundred metres) and Baidu adds its own BD-09
offset on top. Everything in Order Radar is WGS-84, so positions are converted once, on
entry (``OrderEvent.crs``).

The forward GCJ-02 transform is the widely published formula (Krasovsky ellipsoid). It has
no closed-form inverse, so :func:`gcj02_to_wgs84` inverts it by fixed-point iteration until
the forward transform of the answer reproduces the input to ~1e-9 degrees (sub-millimetre);
the one-step approximation many libraries use is off by 1-2 m. BD-09 is inverted the same way.
GCJ-02 applies only inside China's rough bounding box: outside it GCJ-02 equals WGS-84.

Every function is pure and works on floats or NumPy arrays alike (``*_arrays`` variants).
Argument order is always (lon, lat), i.e. (x, y).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stream.contract import Crs

FloatArray = NDArray[np.float64]

#: Krasovsky 1940 semi-major axis and eccentricity squared, as in the published GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323
#: BD-09's rotation constant.
_X_PI = math.pi * 3000.0 / 180.0

#: China's rough bounding box (lon_min, lat_min, lon_max, lat_max) used by every GCJ-02
#: implementation; points outside it are not offset.
CHINA_BBOX = (72.004, 0.8293, 137.8347, 55.8271)

#: Iteration stop for the inverse transforms, in degrees (~0.1 mm).
_INVERSE_TOLERANCE_DEG = 1e-9
_INVERSE_MAX_ITERATIONS = 30


def _arrays(lons: ArrayLike, lats: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(lons, dtype=np.float64)
    y = np.asarray(lats, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"lons and lats differ in shape: {x.shape} vs {y.shape}")
    return x, y


def in_china_bbox(lons: ArrayLike, lats: ArrayLike) -> NDArray[np.bool_]:
    """Where GCJ-02 applies: inside China's rough bounding box."""
    x, y = _arrays(lons, lats)
    lon_min, lat_min, lon_max, lat_max = CHINA_BBOX
    return (x >= lon_min) & (x <= lon_max) & (y >= lat_min) & (y <= lat_max)


def _gcj_offset(x: Any, y: Any, m: ModuleType) -> tuple[Any, Any]:
    """The GCJ-02 offset (dlon, dlat) in degrees at WGS-84 position (x, y), ignoring the bbox.

    ``m`` is :mod:`math` for floats or :mod:`numpy` for arrays: one formula, two speeds
    (NumPy on a single float is ~30x slower than math).
    """
    u = x - 105.0
    v = y - 35.0
    root = m.sqrt(abs(u))
    common = (20.0 * m.sin(6.0 * u * math.pi) + 20.0 * m.sin(2.0 * u * math.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * u + 3.0 * v + 0.2 * v * v + 0.1 * u * v + 0.2 * root + common
    dlat += (20.0 * m.sin(v * math.pi) + 40.0 * m.sin(v / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * m.sin(v / 12.0 * math.pi) + 320.0 * m.sin(v * math.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + u + 2.0 * v + 0.1 * u * u + 0.1 * u * v + 0.1 * root + common
    dlon += (20.0 * m.sin(u * math.pi) + 40.0 * m.sin(u / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (150.0 * m.sin(u / 12.0 * math.pi) + 300.0 * m.sin(u / 30.0 * math.pi)) * 2.0 / 3.0
    rad_lat = y / 180.0 * math.pi
    magic = 1.0 - _EE * m.sin(rad_lat) ** 2
    sqrt_magic = m.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * m.cos(rad_lat) * math.pi)
    return dlon, dlat


def _bd_forward(x: Any, y: Any, m: ModuleType) -> tuple[Any, Any]:
    z = m.sqrt(x * x + y * y) + 0.00002 * m.sin(y * _X_PI)
    theta = m.arctan2(y, x) if m is np else math.atan2(y, x)
    theta = theta + 0.000003 * m.cos(x * _X_PI)
    return z * m.cos(theta) + 0.0065, z * m.sin(theta) + 0.006


def _bd_inverse_guess(bx: Any, by: Any, m: ModuleType) -> tuple[Any, Any]:
    """Baidu's published approximate inverse (error ~1e-7 degrees), the iteration's start."""
    x = bx - 0.0065
    y = by - 0.006
    z = m.sqrt(x * x + y * y) - 0.00002 * m.sin(y * _X_PI)
    theta = m.arctan2(y, x) if m is np else math.atan2(y, x)
    theta = theta - 0.000003 * m.cos(x * _X_PI)
    return z * m.cos(theta), z * m.sin(theta)


def _gcj_forward(x: Any, y: Any, m: ModuleType) -> tuple[Any, Any]:
    """WGS-84 -> GCJ-02 at (x, y), ignoring the bbox."""
    dlon, dlat = _gcj_offset(x, y, m)
    return x + dlon, y + dlat


def _invert(
    forward: Callable[[Any, Any, ModuleType], tuple[Any, Any]], tx: Any, ty: Any, guess: tuple[Any, Any], m: ModuleType
) -> tuple[Any, Any]:
    """The position whose ``forward`` transform is (tx, ty), by fixed-point iteration from
    ``guess`` until every error is within :data:`_INVERSE_TOLERANCE_DEG` (floats or arrays, as
    ``m`` is :mod:`math` or :mod:`numpy`)."""
    gx, gy = guess
    for _ in range(_INVERSE_MAX_ITERATIONS):
        fx, fy = forward(gx, gy, m)
        ex, ey = fx - tx, fy - ty
        gx, gy = gx - ex, gy - ey
        if m is np:
            if not np.any(np.maximum(np.abs(ex), np.abs(ey)) > _INVERSE_TOLERANCE_DEG):
                break
        elif max(abs(ex), abs(ey)) <= _INVERSE_TOLERANCE_DEG:
            break
    return gx, gy


def wgs84_to_gcj02_arrays(lons: ArrayLike, lats: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS-84 -> GCJ-02 (the forward, exact transform); identity outside China's bbox."""
    x, y = _arrays(lons, lats)
    gx, gy = _gcj_forward(x, y, np)
    inside = in_china_bbox(x, y)
    return np.where(inside, gx, x), np.where(inside, gy, y)


def gcj02_to_wgs84_arrays(lons: ArrayLike, lats: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 -> WGS-84 by iterating the forward transform (accurate to ~1e-9 degrees)."""
    gx, gy = _arrays(lons, lats)
    inside = in_china_bbox(gx, gy)
    wx, wy = gx.copy(), gy.copy()
    wx[inside], wy[inside] = _invert(_gcj_forward, gx[inside], gy[inside], (gx[inside], gy[inside]), np)
    return wx, wy


def gcj02_to_bd09_arrays(lons: ArrayLike, lats: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 -> BD-09 (Baidu's forward transform)."""
    x, y = _arrays(lons, lats)
    return _bd_forward(x, y, np)


def bd09_to_gcj02_arrays(lons: ArrayLike, lats: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """BD-09 -> GCJ-02: the published approximate inverse, refined by iteration."""
    bx, by = _arrays(lons, lats)
    return _invert(_bd_forward, bx, by, _bd_inverse_guess(bx, by, np), np)


def bd09_to_wgs84_arrays(lons: ArrayLike, lats: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """BD-09 -> WGS-84 (via GCJ-02)."""
    return gcj02_to_wgs84_arrays(*bd09_to_gcj02_arrays(lons, lats))


def wgs84_to_bd09_arrays(lons: ArrayLike, lats: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS-84 -> BD-09 (via GCJ-02)."""
    return gcj02_to_bd09_arrays(*wgs84_to_gcj02_arrays(lons, lats))


def to_wgs84_arrays(lons: ArrayLike, lats: ArrayLike, crs: Crs) -> tuple[FloatArray, FloatArray]:
    """Convert positions given in ``crs`` to WGS-84 (a copy when already WGS-84)."""
    if crs is Crs.GCJ02:
        return gcj02_to_wgs84_arrays(lons, lats)
    if crs is Crs.BD09:
        return bd09_to_wgs84_arrays(lons, lats)
    x, y = _arrays(lons, lats)
    return x.copy(), y.copy()


# Scalar variants: the same formulas on floats with :mod:`math` (a few microseconds each).


def _scalar_in_china(lon: float, lat: float) -> bool:
    lon_min, lat_min, lon_max, lat_max = CHINA_BBOX
    return lon_min <= lon <= lon_max and lat_min <= lat <= lat_max


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 -> GCJ-02 for one position: (lon, lat)."""
    if not _scalar_in_china(lon, lat):
        return float(lon), float(lat)
    return _gcj_forward(float(lon), float(lat), math)


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 -> WGS-84 for one position: (lon, lat), accurate to ~1e-9 degrees."""
    if not _scalar_in_china(lon, lat):
        return float(lon), float(lat)
    wx, wy = _invert(_gcj_forward, lon, lat, (float(lon), float(lat)), math)
    return float(wx), float(wy)


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 -> BD-09 for one position: (lon, lat)."""
    bx, by = _bd_forward(float(lon), float(lat), math)
    return float(bx), float(by)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """BD-09 -> GCJ-02 for one position: (lon, lat), accurate to ~1e-9 degrees."""
    gx, gy = _invert(_bd_forward, lon, lat, _bd_inverse_guess(float(lon), float(lat), math), math)
    return float(gx), float(gy)


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """BD-09 -> WGS-84 for one position: (lon, lat)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 -> BD-09 for one position: (lon, lat)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def to_wgs84(lon: float, lat: float, crs: Crs) -> tuple[float, float]:
    """Convert one position given in ``crs`` to WGS-84: (lon, lat)."""
    if crs is Crs.GCJ02:
        return gcj02_to_wgs84(lon, lat)
    if crs is Crs.BD09:
        return bd09_to_wgs84(lon, lat)
    return float(lon), float(lat)
