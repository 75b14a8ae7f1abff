"""Which region a position is in: its province in China, its country elsewhere.

The boundaries ship in ``geo/data`` (see ``geo/data/SOURCE.md``): China's 34 province-level
units (including Taiwan, Hong Kong and Macao, identified by adcode) and Natural Earth 1:50m
countries for the rest of the world. Where the two disagree on a border, the China file wins.

Coastlines are coarse, so a point outside every polygon is given the nearest region within
:data:`COAST_TOLERANCE_M` (a port, a beach, a zip-code centroid on the shore); a point far
at sea gets no region.

:class:`RegionIndex` is immutable and built once; :func:`default_region_index` loads the
shipped files on first use and caches the result. Lookups are vectorised
(:meth:`RegionIndex.regions_for` on arrays of thousands of points) and the scalar
:meth:`RegionIndex.region_for` keeps an LRU cache, as the same depots and hubs recur.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from geo.distance import haversine_m

DATA_DIR = Path(__file__).resolve().parent / "data"
CHINA_PROVINCES_FILE = "china_provinces.geojson"
WORLD_COUNTRIES_FILE = "world_countries.geojson"

#: How far outside a (coarse, simplified) coastline a point may be and still get the region.
COAST_TOLERANCE_M = 30_000.0
#: Metres per degree of latitude (and of longitude at the equator) on the mean sphere.
_M_PER_DEG = 111_195.0
#: Scalar lookups are cached on coordinates rounded to this many decimals (~1 m), far
#: finer than the boundaries themselves (~100 m).
_CACHE_DECIMALS = 5
_CACHE_SIZE = 65_536
_NO_REGION = -1

_T = TypeVar("_T")


class RegionKind(StrEnum):
    PROVINCE = "province"
    COUNTRY = "country"


@dataclass(frozen=True, slots=True)
class Region:
    """A province of China (``code`` = GB/T 2260 adcode) or a country (``code`` = ISO 3166-1
    numeric, or the English name for the few units that have none, e.g. Kosovo)."""

    kind: RegionKind
    code: str
    #: Chinese name for provinces, English name for countries.
    name: str
    name_en: str

    @property
    def adcode(self) -> str | None:
        return self.code if self.kind is RegionKind.PROVINCE else None


class BoundaryFileError(ValueError):
    """A boundary file is missing or malformed; the message names the file and feature."""


def read_boundaries(path: Path, describe: Callable[[dict[str, Any]], _T]) -> list[tuple[_T, Any]]:
    """Each feature of a GeoJSON boundary file as ``(describe(properties), shapely geometry)``.

    The one reader of the shipped boundary files (this index and the war-room's base map): a
    missing file, a malformed feature or a missing property raises :class:`BoundaryFileError`
    naming the file and the feature."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BoundaryFileError(f"{path}: cannot read GeoJSON: {exc}") from None
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        raise BoundaryFileError(f"{path}: not a GeoJSON FeatureCollection")
    described: list[tuple[_T, Any]] = []
    for number, feature in enumerate(features):
        try:
            props = feature.get("properties") or {}
            described.append((describe(props), shapely.from_geojson(json.dumps(feature["geometry"]))))
        except (AttributeError, KeyError, TypeError, shapely.errors.GEOSException) as exc:
            raise BoundaryFileError(f"{path}: feature {number}: {exc!r}") from None
    return described


def _province(props: dict[str, Any]) -> Region:
    return Region(RegionKind.PROVINCE, str(props["adcode"]), str(props["name"]), str(props["name_en"]))


def _country(props: dict[str, Any]) -> Region:
    name = str(props["name"])
    return Region(RegionKind.COUNTRY, str(props.get("iso_n3") or name), name, name)


def _load_boundaries(data_dir: Path) -> tuple[list[Region], list[Any]]:
    described = [
        *read_boundaries(data_dir / CHINA_PROVINCES_FILE, _province),
        *read_boundaries(data_dir / WORLD_COUNTRIES_FILE, _country),
    ]
    return [region for region, _ in described], [geometry for _, geometry in described]


class RegionIndex:
    """Point-in-region lookup over prioritised regions (earlier wins where they overlap)."""

    def __init__(
        self,
        regions: Sequence[Region],
        geometries: Sequence[Any],
        tolerance_m: float = COAST_TOLERANCE_M,
    ) -> None:
        if len(regions) != len(geometries):
            raise ValueError(f"{len(regions)} regions but {len(geometries)} geometries")
        self.regions: tuple[Region, ...] = tuple(regions)
        self.tolerance_m = float(tolerance_m)
        # Index polygon parts, not whole multipolygons: an archipelago's bounding box would
        # otherwise cover half an ocean and make every query test it.
        parts, owners = shapely.get_parts(np.asarray(geometries, dtype=object), return_index=True)
        self._parts: NDArray[np.object_] = parts
        self._part_region: NDArray[np.intp] = owners.astype(np.intp)
        shapely.prepare(self._parts)
        self._tree = shapely.STRtree(self._parts)
        self._cached_index = functools.lru_cache(maxsize=_CACHE_SIZE)(self._index_of_one)

    @classmethod
    def load(cls, data_dir: Path = DATA_DIR, tolerance_m: float = COAST_TOLERANCE_M) -> RegionIndex:
        """Build from the boundary files in ``data_dir`` (China provinces first, then world)."""
        regions, geometries = _load_boundaries(data_dir)
        return cls(regions, geometries, tolerance_m)

    def region_indices(self, lons: ArrayLike, lats: ArrayLike) -> NDArray[np.intp]:
        """Index into :attr:`regions` for each point, -1 where none (or non-finite input)."""
        x = np.asarray(lons, dtype=np.float64).ravel()
        y = np.asarray(lats, dtype=np.float64).ravel()
        if x.shape != y.shape:
            raise ValueError(f"lons and lats differ in length: {x.size} vs {y.size}")
        result = np.full(x.size, _NO_REGION, dtype=np.intp)
        valid = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        if valid.size == 0:
            return result
        vx, vy = x[valid], y[valid]
        points = np.asarray(shapely.points(vx, vy), dtype=object)
        found = self._containing(points, vx, vy)
        missed = np.flatnonzero(found == _NO_REGION)
        if missed.size:
            found[missed] = self._nearest_within_tolerance(points[missed], vx[missed], vy[missed])
        result[valid] = found
        return result

    def regions_for(self, lons: ArrayLike, lats: ArrayLike) -> list[Region | None]:
        """The region of each point (``None`` at sea or for a missing coordinate)."""
        regions = self.regions
        return [regions[i] if i >= 0 else None for i in self.region_indices(lons, lats).tolist()]

    def region_for(self, lon: float, lat: float) -> Region | None:
        """The region of one point; cached, as the same depots and hubs recur."""
        if not (math.isfinite(lon) and math.isfinite(lat)):
            return None
        i = self._cached_index(round(lon, _CACHE_DECIMALS), round(lat, _CACHE_DECIMALS))
        return self.regions[i] if i >= 0 else None

    def _index_of_one(self, lon: float, lat: float) -> int:
        return int(self.region_indices([lon], [lat])[0])

    def _containing(
        self, points: NDArray[np.object_], x: NDArray[np.float64], y: NDArray[np.float64]
    ) -> NDArray[np.intp]:
        # Bounding-box candidates from the tree, then one vectorised exact test on the
        # prepared parts; where regions overlap the lowest region index (priority) wins.
        point_idx, part_idx = self._tree.query(points)
        hit = shapely.intersects_xy(self._parts[part_idx], x[point_idx], y[point_idx])
        point_idx, region_idx = point_idx[hit], self._part_region[part_idx[hit]]
        best = np.full(points.size, np.iinfo(np.intp).max, dtype=np.intp)
        np.minimum.at(best, point_idx, region_idx)
        best[best == np.iinfo(np.intp).max] = _NO_REGION
        return best

    def _nearest_within_tolerance(
        self, points: NDArray[np.object_], x: NDArray[np.float64], y: NDArray[np.float64]
    ) -> NDArray[np.intp]:
        # A degree of longitude shrinks with cos(lat): search a lon-degree radius (a
        # superset of the metric disk), then measure the candidates in metres. The nearest
        # boundary point is found in lon/lat, so the measured distance is an upper bound:
        # at high latitudes a point just inside the tolerance may be left without a region.
        cos_lat = np.maximum(np.cos(np.radians(y)), 0.01)
        radius_deg = self.tolerance_m / (_M_PER_DEG * cos_lat)
        point_idx, part_idx = self._tree.query(points, predicate="dwithin", distance=radius_deg)
        out = np.full(points.size, _NO_REGION, dtype=np.intp)
        if point_idx.size == 0:
            return out
        nearest = shapely.get_point(shapely.shortest_line(points[point_idx], self._parts[part_idx]), 1)
        metres = haversine_m(x[point_idx], y[point_idx], shapely.get_x(nearest), shapely.get_y(nearest))
        regions = self._part_region[part_idx]
        order = np.lexsort((regions, metres, point_idx))  # per point: nearest, then priority
        point_idx, metres, regions = point_idx[order], metres[order], regions[order]
        first = np.ones(point_idx.size, dtype=bool)
        first[1:] = point_idx[1:] != point_idx[:-1]
        keep = first & (metres <= self.tolerance_m)
        out[point_idx[keep]] = regions[keep]
        return out


@functools.cache
def default_region_index() -> RegionIndex:
    """The index over the shipped boundary files, loaded once on first use (read-only)."""
    return RegionIndex.load()


def region_for(lon: float, lat: float) -> Region | None:
    """Province (China) or country of a WGS-84 position, ``None`` far at sea."""
    return default_region_index().region_for(lon, lat)


def regions_for(lons: ArrayLike, lats: ArrayLike) -> list[Region | None]:
    """Vectorised :func:`region_for` for a batch of positions."""
    return default_region_index().regions_for(lons, lats)
