"""H3 cells of a position at a few resolutions, for heatmaps and spatial grouping.

Each resolution is computed from the point itself (``latlng_to_cell``), not as the parent of
a finer cell: H3 children do not tile their parent exactly, and a heatmap wants the cell
the point is really in. Resolution 3 is about 12,000 km2 per cell (country scale), 5 about
250 km2 (city), 7 about 5 km2 (district).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import h3
import numpy as np
from numpy.typing import ArrayLike

#: Resolutions computed for every event unless a caller asks otherwise.
DEFAULT_RESOLUTIONS: tuple[int, ...] = (3, 5, 7)


def _checked(resolutions: Sequence[int]) -> tuple[int, ...]:
    bad = [r for r in resolutions if not 0 <= r <= 15]
    if bad:
        raise ValueError(f"H3 resolutions must be 0..15, got {bad}")
    return tuple(resolutions)


def h3_cells(lat: float, lon: float, resolutions: Sequence[int] = DEFAULT_RESOLUTIONS) -> dict[int, str]:
    """``{resolution: cell}`` for one WGS-84 position (note: lat first, as in H3)."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"not a finite position: lat={lat}, lon={lon}")
    return {res: h3.latlng_to_cell(lat, lon, res) for res in _checked(resolutions)}


def h3_cells_batch(
    lats: ArrayLike, lons: ArrayLike, resolutions: Sequence[int] = DEFAULT_RESOLUTIONS
) -> dict[int, list[str | None]]:
    """``{resolution: [cell per point]}`` for a batch; ``None`` where a coordinate is missing."""
    ys = np.asarray(lats, dtype=np.float64).ravel()
    xs = np.asarray(lons, dtype=np.float64).ravel()
    if ys.shape != xs.shape:
        raise ValueError(f"lats and lons differ in length: {ys.size} vs {xs.size}")
    finite = (np.isfinite(ys) & np.isfinite(xs)).tolist()
    pairs = list(zip(ys.tolist(), xs.tolist(), finite, strict=True))
    to_cell = h3.latlng_to_cell
    return {res: [to_cell(lat, lon, res) if ok else None for lat, lon, ok in pairs] for res in _checked(resolutions)}


def connected_groups(cells: Iterable[str]) -> list[tuple[str, ...]]:
    """The cells grouped into neighbourhoods (cells touching through ``grid_disk(cell, 1)``),
    each sorted, in the order of their smallest cell; deterministic for the same input."""
    members = set(cells)
    seen: set[str] = set()
    groups: list[tuple[str, ...]] = []
    for start in sorted(members):
        if start in seen:
            continue
        component, stack = [], [start]
        seen.add(start)
        while stack:
            cell = stack.pop()
            component.append(cell)
            for near in sorted(h3.grid_disk(cell, 1)):
                if near in members and near not in seen:
                    seen.add(near)
                    stack.append(near)
        groups.append(tuple(sorted(component)))
    return groups
