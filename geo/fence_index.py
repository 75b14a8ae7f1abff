"""Which geofences contain which positions: an immutable, vectorised index.

:class:`GeofenceIndex` is built once from a list of :class:`Fence` (usually by
``geo.fence_files.load_geofence_index``) and passed to whoever needs it; it is never a
module global, so a reload can build a new one and swap it in (``geo.fence_registry``).

A lookup is two vectorised steps over a whole batch of positions: an STRtree query on
bounding boxes gives candidate (point, fence) pairs, then ``shapely.intersects_xy`` on the
prepared fence polygons keeps the real hits. No Point objects are built for the test, and
no Python loop runs per point or per fence. Boundary points count as inside.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from geo.fence_config import FenceKind
from stream.contract import Status

AttributeValue = str | int | float | bool | None


@dataclass(frozen=True)
class Fence:
    """One fenced area (WGS-84 lon/lat polygon) and the rules of its layer."""

    id: str
    layer: str
    kind: FenceKind
    geometry: Any  # shapely Polygon or MultiPolygon
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    advance_stage_to: Status | None = None
    dwell_limit: timedelta | None = None


class GeofenceIndexError(ValueError):
    """Fences that cannot be indexed: duplicate ids, empty or non-polygonal geometry."""


class GeofenceIndex:
    """Point-in-fence lookup over a fixed set of fences."""

    def __init__(self, fences: Sequence[Fence]) -> None:
        self.fences: tuple[Fence, ...] = tuple(fences)
        ids = [f.id for f in self.fences]
        if len(set(ids)) != len(ids):
            dupes = sorted(i for i, count in Counter(ids).items() if count > 1)
            raise GeofenceIndexError(f"duplicate fence ids: {', '.join(dupes[:10])}")
        geometries = np.asarray([f.geometry for f in self.fences], dtype=object)
        if geometries.size:
            bad = [
                f.id
                for f, g in zip(self.fences, geometries, strict=True)
                if g is None or g.is_empty or g.geom_type not in ("Polygon", "MultiPolygon")
            ]
            if bad:
                raise GeofenceIndexError(f"fences without a polygon: {', '.join(bad[:10])}")
        self._by_id: dict[str, Fence] = dict(zip(ids, self.fences, strict=True))
        self._ids: list[str] = ids
        self._geometries: NDArray[np.object_] = geometries
        # Preparing (GEOS builds an internal edge index on each polygon) makes every later
        # point test fast; it attaches to the geometry objects and is idempotent.
        shapely.prepare(self._geometries)
        self._tree = shapely.STRtree(self._geometries)

    def __len__(self) -> int:
        return len(self.fences)

    def __contains__(self, fence_id: object) -> bool:
        return fence_id in self._by_id

    def __iter__(self) -> Iterator[Fence]:
        return iter(self.fences)

    def get(self, fence_id: str) -> Fence | None:
        return self._by_id.get(fence_id)

    @property
    def by_id(self) -> Mapping[str, Fence]:
        return self._by_id

    def lookup_pairs(self, lons: ArrayLike, lats: ArrayLike) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """All (point index, fence index) hits, sorted by point then fence index."""
        x = np.asarray(lons, dtype=np.float64).ravel()
        y = np.asarray(lats, dtype=np.float64).ravel()
        if x.shape != y.shape:
            raise ValueError(f"lons and lats differ in length: {x.size} vs {y.size}")
        empty = np.empty(0, dtype=np.intp)
        if x.size == 0 or not self.fences:
            return empty, empty
        # Non-finite coordinates give empty points, which never match.
        point_idx, fence_idx = self._tree.query(shapely.points(x, y))
        if point_idx.size == 0:
            return empty, empty
        hit = shapely.intersects_xy(self._geometries[fence_idx], x[point_idx], y[point_idx])
        point_idx, fence_idx = point_idx[hit], fence_idx[hit]
        order = np.lexsort((fence_idx, point_idx))
        return point_idx[order].astype(np.intp), fence_idx[order].astype(np.intp)

    def lookup(self, lons: ArrayLike, lats: ArrayLike) -> list[tuple[str, ...]]:
        """For each point, the ids of the fences containing it (in index order)."""
        n = np.asarray(lons).size
        out: list[tuple[str, ...]] = [()] * n
        point_idx, fence_idx = self.lookup_pairs(lons, lats)
        if point_idx.size == 0:
            return out
        ids = self._ids
        hit_ids = [ids[i] for i in fence_idx.tolist()]
        starts = np.flatnonzero(np.r_[True, point_idx[1:] != point_idx[:-1]])
        ends = np.r_[starts[1:], point_idx.size]
        for point, start, end in zip(point_idx[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
            out[point] = tuple(hit_ids[start:end])
        return out

    def fences_at(self, lon: float, lat: float) -> tuple[str, ...]:
        """The ids of the fences containing one point."""
        return self.lookup([lon], [lat])[0]
