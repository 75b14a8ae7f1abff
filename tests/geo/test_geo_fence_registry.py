"""Hot reload of geofence files: change detection, atomic swap, bad files keep the old index."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geo.fence_files import GeofenceLoadError
from geo.fence_registry import GeofenceRegistry, ReloadStatus

T0 = datetime(2026, 11, 11, tzinfo=UTC)
CONFIG = "layers:\n  - {name: hubs, path: hubs.geojson, kind: hub, id_field: code}\n"


def write_fences(path: Path, fences: dict[str, tuple[float, float, float, float]]) -> None:
    frame = gpd.GeoDataFrame(
        {"code": list(fences), "geometry": [shapely.box(*b) for b in fences.values()]}, crs="EPSG:4326"
    )
    frame.to_file(path, driver="GeoJSON")
    bump_mtime(path)


_clock = [1_700_000_000_000_000_000]


def bump_mtime(path: Path) -> None:
    # Filesystem timestamps can be coarser than two quick writes; set them explicitly
    # instead of sleeping so every write is a visible change.
    _clock[0] += 1_000_000_000
    os.utime(path, ns=(_clock[0], _clock[0]))


@pytest.fixture()
def config_path(tmp_path: Path) -> Path:
    write_fences(tmp_path / "hubs.geojson", {"A": (0, 0, 1, 1)})
    path = tmp_path / "geofences.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    bump_mtime(path)
    return path


def test_changed_file_is_reloaded_and_swapped(config_path: Path) -> None:
    registry = GeofenceRegistry(config_path, T0)
    old = registry.index
    assert registry.reload_if_changed(T0 + timedelta(seconds=1)).status is ReloadStatus.UNCHANGED
    assert registry.index is old

    write_fences(config_path.parent / "hubs.geojson", {"A": (0, 0, 1, 1), "B": (5, 5, 6, 6)})
    outcome = registry.reload_if_changed(T0 + timedelta(seconds=2))
    assert outcome.status is ReloadStatus.RELOADED and outcome.fence_count == 2
    assert registry.index is not old and registry.loaded_at == T0 + timedelta(seconds=2)
    assert registry.index.fences_at(5.5, 5.5) == ("B",)
    # The old index a reader took before the swap is untouched.
    assert old.fences_at(5.5, 5.5) == () and len(old) == 1
    assert registry.reload_if_changed(T0 + timedelta(seconds=3)).status is ReloadStatus.UNCHANGED


def test_bad_file_keeps_the_old_index_and_reports_once(config_path: Path) -> None:
    registry = GeofenceRegistry(config_path, T0)
    good = registry.index
    fences = config_path.parent / "hubs.geojson"
    fences.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    bump_mtime(fences)

    outcome = registry.reload_if_changed(T0 + timedelta(seconds=1))
    assert outcome.status is ReloadStatus.FAILED
    assert outcome.error is not None and "hubs.geojson" in outcome.error
    assert registry.last_error == outcome.error
    assert registry.index is good and registry.index.fences_at(0.5, 0.5) == ("A",)
    # Not retried (and not re-reported) until the file changes again.
    assert registry.reload_if_changed(T0 + timedelta(seconds=2)).status is ReloadStatus.UNCHANGED

    write_fences(fences, {"C": (2, 2, 3, 3)})
    assert registry.reload_if_changed(T0 + timedelta(seconds=3)).status is ReloadStatus.RELOADED
    assert registry.last_error is None and registry.index.fences_at(2.5, 2.5) == ("C",)


def test_bad_rule_file_keeps_the_old_index(config_path: Path) -> None:
    registry = GeofenceRegistry(config_path, T0)
    config_path.write_text("layers:\n  - {name: hubs, path: hubs.geojson, kind: castle, id_field: code}\n")
    bump_mtime(config_path)
    outcome = registry.reload_if_changed(T0)
    assert outcome.status is ReloadStatus.FAILED and "layers[0].kind" in (outcome.error or "")
    assert registry.index.fences_at(0.5, 0.5) == ("A",)


def test_a_new_layer_is_watched_even_while_its_file_is_broken(config_path: Path) -> None:
    registry = GeofenceRegistry(config_path, T0)
    zones = config_path.parent / "zones.geojson"
    zones.write_text("not json", encoding="utf-8")
    config_path.write_text(CONFIG + "  - {name: zones, path: zones.geojson, kind: restricted, id_field: code}\n")
    bump_mtime(config_path)
    assert registry.reload_if_changed(T0).status is ReloadStatus.FAILED
    write_fences(zones, {"Z": (8, 8, 9, 9)})  # fixing the new file alone triggers the reload
    assert registry.reload_if_changed(T0).status is ReloadStatus.RELOADED
    assert registry.index.fences_at(8.5, 8.5) == ("Z",)


def test_a_bad_initial_load_raises(tmp_path: Path) -> None:
    path = tmp_path / "geofences.yaml"
    path.write_text("layers:\n  - {name: x, path: nowhere.geojson, kind: hub, id_field: id}\n")
    with pytest.raises(GeofenceLoadError, match="nowhere.geojson"):
        GeofenceRegistry(path, T0)
