"""GeofenceIndex: vectorised point-in-fence lookup."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geo.fence_config import FenceKind
from geo.fence_index import Fence, GeofenceIndex, GeofenceIndexError
from geo.fence_shapes import geodesic_circles


def fence(fence_id: str, geometry: object, kind: FenceKind = FenceKind.DELIVERY_ZONE) -> Fence:
    return Fence(id=fence_id, layer="test", kind=kind, geometry=geometry)


def test_lookup_returns_every_containing_fence_per_point() -> None:
    index = GeofenceIndex(
        [
            fence("a", shapely.box(0, 0, 2, 2)),
            fence("b", shapely.box(1, 1, 3, 3)),
            fence("c", shapely.MultiPolygon([shapely.box(10, 10, 11, 11), shapely.box(20, 20, 21, 21)])),
        ]
    )
    lons = [0.5, 1.5, 2.5, 20.5, 50.0, 2.0, np.nan]
    lats = [0.5, 1.5, 2.5, 20.5, 50.0, 1.0, 1.0]
    assert index.lookup(lons, lats) == [("a",), ("a", "b"), ("b",), ("c",), (), ("a", "b"), ()]
    assert index.fences_at(1.5, 1.5) == ("a", "b")
    assert len(index) == 3 and "b" in index and index.get("zz") is None


def test_lookup_agrees_with_a_naive_loop_on_random_circles() -> None:
    rng = np.random.default_rng(11)
    centres_x, centres_y = rng.uniform(120, 121, 200), rng.uniform(30, 31, 200)
    circles = geodesic_circles(centres_x, centres_y, rng.uniform(500, 5000, 200))
    index = GeofenceIndex([fence(f"f{i}", c) for i, c in enumerate(circles)])
    xs, ys = rng.uniform(119.9, 121.1, 3000), rng.uniform(29.9, 31.1, 3000)
    # Reference without the tree: every fence against every point.
    inside = np.array([shapely.intersects(c, shapely.points(xs, ys)) for c in circles])
    naive = [tuple(f"f{i}" for i in np.flatnonzero(inside[:, p])) for p in range(xs.size)]
    got = index.lookup(xs, ys)
    assert got == naive
    assert sum(bool(ids) for ids in got) > 100  # the test exercises real hits


def test_empty_index_and_empty_batch() -> None:
    assert GeofenceIndex([]).lookup([1.0, 2.0], [1.0, 2.0]) == [(), ()]
    index = GeofenceIndex([fence("a", shapely.box(0, 0, 1, 1))])
    assert index.lookup([], []) == []
    points, fences = index.lookup_pairs([], [])
    assert points.size == 0 and fences.size == 0


def test_bad_fences_are_rejected_with_their_ids() -> None:
    with pytest.raises(GeofenceIndexError, match="duplicate fence ids: a"):
        GeofenceIndex([fence("a", shapely.box(0, 0, 1, 1)), fence("a", shapely.box(2, 2, 3, 3))])
    with pytest.raises(GeofenceIndexError, match="without a polygon: p"):
        GeofenceIndex([fence("p", shapely.Point(0, 0))])
