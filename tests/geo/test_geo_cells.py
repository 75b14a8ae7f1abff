"""H3 cells per event."""

from __future__ import annotations

import math

import h3
import pytest
import shapely

from geo.cells import DEFAULT_RESOLUTIONS, h3_cells, h3_cells_batch


def test_cells_at_default_resolutions_contain_the_point() -> None:
    lat, lon = 43.8708, 126.5661
    cells = h3_cells(lat, lon)
    assert sorted(cells) == [3, 5, 7] == list(DEFAULT_RESOLUTIONS)
    for res, cell in cells.items():
        assert h3.is_valid_cell(cell)
        assert h3.get_resolution(cell) == res
        boundary = shapely.Polygon([(x, y) for y, x in h3.cell_to_boundary(cell)])
        assert boundary.contains(shapely.Point(lon, lat))
    # Coarser cells really are coarser: the res-7 cell lies inside the res-3 one's area.
    assert h3.cell_to_parent(cells[7], 3) == cells[3]


def test_nearby_points_share_coarse_but_not_fine_cells() -> None:
    a = h3_cells(43.8708, 126.5661, resolutions=(3, 9))
    b = h3_cells(43.8947, 126.5847, resolutions=(3, 9))  # ~3 km away
    assert a[3] == b[3]
    assert a[9] != b[9]


def test_batch_matches_scalar_and_marks_missing_positions() -> None:
    lats = [43.8708, math.nan, -23.55]
    lons = [126.5661, 10.0, -46.63]
    batch = h3_cells_batch(lats, lons, resolutions=(5, 7))
    assert batch[5][1] is None and batch[7][1] is None
    for i in (0, 2):
        assert {5: batch[5][i], 7: batch[7][i]} == h3_cells(lats[i], lons[i], resolutions=(5, 7))


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="0..15"):
        h3_cells(10.0, 10.0, resolutions=(16,))
    with pytest.raises(ValueError, match="finite"):
        h3_cells(math.nan, 10.0)
