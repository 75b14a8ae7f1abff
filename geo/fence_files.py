"""Reading geofence files (GeoJSON, Shapefile, GeoPackage) into a :class:`GeofenceIndex`.

The I/O shell around the pure index: geopandas (pyogrio) reads each layer named in
``config/geofences.yaml``, reprojects it to WGS-84 lon/lat, converts GCJ-02/BD-09 vertices
if the layer says so, checks ids and geometries, and hands plain :class:`Fence` values to
the index. Every problem raises :class:`GeofenceLoadError` naming the file, the layer and
what is wrong, so a hot reload can keep the old index and report it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio.errors
import shapely
from numpy.typing import NDArray
from pyproj.exceptions import CRSError

from config.rules import RuleFileError
from geo.coords import to_wgs84_arrays
from geo.fence_config import GeofenceConfig, GeofenceLayer, load_geofence_config, resolve_layer_path
from geo.fence_index import AttributeValue, Fence, GeofenceIndex, GeofenceIndexError
from stream.contract import Crs

WGS84 = "EPSG:4326"
#: Files GDAL reads alongside a shapefile; a change to any of them is a change to the layer.
SHAPEFILE_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


class GeofenceLoadError(ValueError):
    """A geofence file or rule file cannot be turned into fences; the message says where."""


def _plain(value: Any) -> AttributeValue:
    """A JSON-friendly scalar from a pandas cell (NumPy scalars, NaN -> None)."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _fence_id(value: Any) -> str | None:
    plain = _plain(value)
    if plain is None or plain == "":
        return None
    if isinstance(plain, float) and plain.is_integer():
        return str(int(plain))  # shapefiles store integer ids as doubles
    return str(plain)


def _to_wgs84_vertices(geoms: NDArray[np.object_], crs: Crs) -> NDArray[np.object_]:
    def convert(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = to_wgs84_arrays(coords[:, 0], coords[:, 1], crs)
        return np.column_stack([x, y])

    converted: NDArray[np.object_] = shapely.transform(geoms, convert)
    return converted


def read_layer(layer: GeofenceLayer, config_path: Path) -> list[Fence]:
    """The fences of one layer; raises :class:`GeofenceLoadError` on any problem."""
    path = resolve_layer_path(layer, config_path)
    where = f"{path} (layer {layer.name!r})"
    if not path.is_file():
        raise GeofenceLoadError(f"{where}: file not found")
    try:
        frame = gpd.read_file(path, layer=layer.layer) if layer.layer else gpd.read_file(path)
    except (
        pyogrio.errors.DataSourceError,
        pyogrio.errors.DataLayerError,
        pyogrio.errors.FieldError,
        pyogrio.errors.GeometryError,
        pyogrio.errors.FeatureError,
        OSError,
        ValueError,
    ) as exc:
        raise GeofenceLoadError(f"{where}: cannot read: {exc}") from None
    missing = [name for name in (layer.id_field, *layer.attributes) if name not in frame.columns]
    if missing:
        raise GeofenceLoadError(
            f"{where}: no such field(s) {', '.join(missing)}; has {', '.join(map(str, frame.columns))}"
        )
    try:
        # GeoJSON without a declared CRS is lon/lat by definition (RFC 7946).
        frame = frame.set_crs(WGS84) if frame.crs is None else frame.to_crs(WGS84)
    except (CRSError, ValueError) as exc:
        raise GeofenceLoadError(f"{where}: cannot reproject to WGS-84: {exc}") from None
    geoms: NDArray[np.object_] = np.asarray(frame.geometry.values, dtype=object)
    if layer.coords is not Crs.WGS84 and geoms.size:
        geoms = _to_wgs84_vertices(geoms, layer.coords)

    fences: list[Fence] = []
    seen: set[str] = set()
    for row_number, (raw_id, geom, attrs) in enumerate(
        zip(frame[layer.id_field].tolist(), geoms, _attribute_rows(frame, layer.attributes), strict=True)
    ):
        fence_id = _fence_id(raw_id)
        feature = f"{where}: feature {row_number}"
        if fence_id is None:
            raise GeofenceLoadError(f"{feature}: {layer.id_field} is empty")
        if fence_id in seen:
            raise GeofenceLoadError(f"{feature}: duplicate {layer.id_field} {fence_id!r}")
        seen.add(fence_id)
        if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            kind = "no geometry" if geom is None or geom.is_empty else geom.geom_type
            raise GeofenceLoadError(f"{feature} ({fence_id}): needs a Polygon or MultiPolygon, got {kind}")
        if not geom.is_valid:
            raise GeofenceLoadError(f"{feature} ({fence_id}): invalid polygon: {shapely.is_valid_reason(geom)}")
        fences.append(
            Fence(
                id=fence_id,
                layer=layer.name,
                kind=layer.kind,
                geometry=geom,
                attributes=attrs,
                advance_stage_to=layer.advance_stage_to,
                dwell_limit=layer.dwell_limit,
            )
        )
    return fences


def _attribute_rows(frame: gpd.GeoDataFrame, names: Iterable[str]) -> list[dict[str, AttributeValue]]:
    names = list(names)
    columns = {name: frame[name].tolist() for name in names}
    return [{name: _plain(columns[name][i]) for name in names} for i in range(len(frame))]


def build_index(config: GeofenceConfig, config_path: Path) -> GeofenceIndex:
    """Read every layer of ``config`` and index all fences together."""
    fences: list[Fence] = []
    for layer in config.layers:
        fences.extend(read_layer(layer, config_path))
    try:
        return GeofenceIndex(fences)
    except GeofenceIndexError as exc:
        raise GeofenceLoadError(f"{config_path}: {exc}") from None


def load_geofence_index(config_path: Path) -> GeofenceIndex:
    """Rule file + layer files -> index; raises :class:`GeofenceLoadError` naming the problem."""
    try:
        config = load_geofence_config(config_path)
    except RuleFileError as exc:
        raise GeofenceLoadError(str(exc)) from None
    return build_index(config, config_path)


def watched_files(config: GeofenceConfig, config_path: Path) -> tuple[Path, ...]:
    """Every file whose change means the index must be rebuilt (rule file first)."""
    paths = [config_path]
    for layer in config.layers:
        path = resolve_layer_path(layer, config_path)
        if path.suffix.lower() == ".shp":
            paths.extend(path.with_suffix(suffix) for suffix in SHAPEFILE_SIDECARS)
        else:
            paths.append(path)
    return tuple(dict.fromkeys(paths))
