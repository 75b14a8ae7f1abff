"""Loading geofence layers from GeoJSON, Shapefile and GeoPackage via config/geofences.yaml."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geo.coords import wgs84_to_gcj02
from geo.fence_config import FenceKind, load_geofence_config
from geo.fence_files import GeofenceLoadError, load_geofence_index, watched_files
from stream.contract import Status

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "geofences.yaml"


def write_frame(path: Path, driver: str, crs: str = "EPSG:4326", **kwargs: object) -> None:
    frame = gpd.GeoDataFrame(
        {
            "code": ["H1", "H2"],
            "label": ["North hub", "South hub"],
            "capacity": [120, 80],
            "geometry": [
                shapely.box(126.50, 43.90, 126.52, 43.92),
                shapely.box(126.50, 43.80, 126.52, 43.82),
            ],
        },
        crs="EPSG:4326",
    ).to_crs(crs)
    frame.to_file(path, driver=driver, **kwargs)


def write_config(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


LAYER = """\
layers:
  - name: hubs
    path: {path}
    kind: hub
    id_field: code
    attributes: [label, capacity]
    advance_stage_to: hub_arrival
    dwell_limit: PT2H
"""


@pytest.mark.parametrize(
    ("filename", "driver", "crs"),
    [
        ("hubs.geojson", "GeoJSON", "EPSG:4326"),
        ("hubs.shp", "ESRI Shapefile", "EPSG:32652"),  # UTM 52N: reprojected on load
        ("hubs.gpkg", "GPKG", "EPSG:3857"),
    ],
)
def test_each_file_format_loads_into_fences(tmp_path: Path, filename: str, driver: str, crs: str) -> None:
    write_frame(tmp_path / filename, driver, crs)
    config = write_config(tmp_path / "geofences.yaml", LAYER.format(path=filename))
    index = load_geofence_index(config)
    assert [f.id for f in index] == ["H1", "H2"]
    hub = index.by_id["H1"]
    assert hub.kind is FenceKind.HUB and hub.layer == "hubs"
    assert hub.attributes == {"label": "North hub", "capacity": 120}
    assert hub.advance_stage_to is Status.HUB_ARRIVAL
    assert hub.dwell_limit is not None and hub.dwell_limit.total_seconds() == 7200
    assert index.lookup([126.51, 126.51, 126.60], [43.91, 43.81, 43.91]) == [("H1",), ("H2",), ()]


def test_geopackage_layer_can_be_chosen(tmp_path: Path) -> None:
    write_frame(tmp_path / "all.gpkg", "GPKG", layer="depots")
    config = write_config(
        tmp_path / "geofences.yaml",
        "layers:\n  - {name: d, path: all.gpkg, layer: depots, kind: warehouse, id_field: code}\n",
    )
    assert [f.id for f in load_geofence_index(config)] == ["H1", "H2"]


def test_gcj02_fence_files_are_converted_to_wgs84(tmp_path: Path) -> None:
    # A fence drawn on AMap around a WGS-84 point: the file holds the GCJ-02 corners.
    wgs = shapely.box(126.55, 43.86, 126.56, 43.87)
    gcj = shapely.Polygon([wgs84_to_gcj02(x, y) for x, y in wgs.exterior.coords])
    gpd.GeoDataFrame({"code": ["Z"], "geometry": [gcj]}, crs="EPSG:4326").to_file(tmp_path / "z.geojson")
    config = write_config(
        tmp_path / "geofences.yaml",
        "layers:\n  - {name: z, path: z.geojson, kind: restricted, id_field: code, coords: gcj02}\n",
    )
    fence = load_geofence_index(config).by_id["Z"]
    assert shapely.equals_exact(fence.geometry, wgs, tolerance=1e-7)


@pytest.mark.parametrize(
    ("frame_kwargs", "layer_extra", "message"),
    [
        ({}, "id_field: nope", "no such field"),
        ({"code": ["A", "A"]}, "id_field: code", "duplicate code 'A'"),
        ({"geometry": [shapely.Point(0, 0), shapely.box(0, 0, 1, 1)]}, "id_field: code", "needs a Polygon"),
        (
            {"geometry": [shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]), shapely.box(0, 0, 1, 1)]},
            "id_field: code",
            "invalid polygon",
        ),
    ],
)
def test_bad_layers_name_the_file_and_the_problem(
    tmp_path: Path, frame_kwargs: dict[str, object], layer_extra: str, message: str
) -> None:
    data: dict[str, object] = {
        "code": ["A", "B"],
        "geometry": [shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)],
    }
    data.update(frame_kwargs)
    gpd.GeoDataFrame(data, crs="EPSG:4326").to_file(tmp_path / "f.geojson")
    config = write_config(
        tmp_path / "geofences.yaml", f"layers:\n  - {{name: f, path: f.geojson, kind: hub, {layer_extra}}}\n"
    )
    with pytest.raises(GeofenceLoadError, match=message) as info:
        load_geofence_index(config)
    assert "f.geojson" in str(info.value)


def test_bad_rule_files_name_the_field(tmp_path: Path) -> None:
    cases = {
        "kind: depot": "layers[0].kind",
        "kind: delivery_zone, advance_stage_to: hub_arrival": "only allowed for kinds",
        "kind: hub, advance_stage_to: delivered": "advance_stage_to must be one of",
        "kind: hub, dwell_limit: soon": "layers[0].dwell_limit",
        "kind: hub, dwell_limit: PT0S": "positive duration",
    }
    for extra, message in cases.items():
        config = write_config(
            tmp_path / "geofences.yaml", f"layers:\n  - {{name: f, path: f.geojson, id_field: id, {extra}}}\n"
        )
        with pytest.raises(GeofenceLoadError, match=re.escape(message)) as info:
            load_geofence_index(config)
        assert "geofences.yaml" in str(info.value)
    config = write_config(
        tmp_path / "geofences.yaml",
        "layers:\n  - {name: f, path: missing.geojson, kind: hub, id_field: id}\n",
    )
    with pytest.raises(GeofenceLoadError, match="missing.geojson.*file not found"):
        load_geofence_index(config)


def test_duplicate_ids_across_layers_are_rejected(tmp_path: Path) -> None:
    write_frame(tmp_path / "a.geojson", "GeoJSON")
    write_frame(tmp_path / "b.geojson", "GeoJSON")
    config = write_config(
        tmp_path / "geofences.yaml",
        "layers:\n"
        "  - {name: a, path: a.geojson, kind: hub, id_field: code}\n"
        "  - {name: b, path: b.geojson, kind: warehouse, id_field: code}\n",
    )
    with pytest.raises(GeofenceLoadError, match="duplicate fence ids: H1, H2"):
        load_geofence_index(config)


def test_shapefile_sidecars_are_watched(tmp_path: Path) -> None:
    config = write_config(tmp_path / "geofences.yaml", LAYER.format(path="hubs.shp"))
    names = [p.name for p in watched_files(load_geofence_config(config), config)]
    assert names == ["geofences.yaml", "hubs.shp", "hubs.shx", "hubs.dbf", "hubs.prj", "hubs.cpg"]


def test_the_shipped_example_config_loads() -> None:
    index = load_geofence_index(REPO_CONFIG)
    kinds = {f.id: f.kind for f in index}
    assert kinds == {
        "JL-31": FenceKind.HUB,
        "JL-165": FenceKind.HUB,
        "JL-R31": FenceKind.DELIVERY_ZONE,
        "JL-R165": FenceKind.DELIVERY_ZONE,
    }
    # The stations sit where LaDe couriers accept their parcels.
    assert index.fences_at(126.5661, 43.8708) == ("JL-31",)
    assert index.fences_at(126.5847, 43.8947) == ("JL-165",)
