"""Disruption-zone polygons drawn on the map (lasso) or uploaded as GeoJSON, checked before
they are offered for saving, and the orders seen inside one. Pure.

A draft is ``{"geometry": <GeoJSON Polygon|MultiPolygon>, "source": "lasso"|"upload"}``;
the gateway validates again when it is saved (``POST /api/v1/disruptions``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import pandas as pd
import shapely
from shapely.errors import GEOSException

#: Largest GeoJSON file accepted (the gateway's API body limit is 256 KiB).
MAX_UPLOAD_BYTES = 200 * 1024
MAX_VERTICES = 5000


class ZoneDraftError(ValueError):
    """The drawn or uploaded shape is not a usable zone; the message says why."""


def _checked(shape: Any) -> dict[str, Any]:
    if shape.is_empty or shape.geom_type not in ("Polygon", "MultiPolygon"):
        raise ZoneDraftError(f"needs a Polygon or MultiPolygon, got {shape.geom_type}")
    if not shape.is_valid:
        shape = shapely.make_valid(shape)
        parts = [p for p in shapely.get_parts(shape) if p.geom_type == "Polygon" and not p.is_empty]
        if not parts:
            raise ZoneDraftError("the outline crosses itself and encloses nothing")
        shape = parts[0] if len(parts) == 1 else shapely.multipolygons(parts)
    min_x, min_y, max_x, max_y = shape.bounds
    if min_x < -180 or max_x > 180 or min_y < -90 or max_y > 90:
        raise ZoneDraftError("coordinates must be WGS-84 [lon, lat] degrees")
    if shapely.get_num_coordinates(shape) > MAX_VERTICES:
        shape = shapely.simplify(shape, 0.001, preserve_topology=True)
    if shape.area <= 0:
        raise ZoneDraftError("the polygon has no area")
    geometry: dict[str, Any] = json.loads(shapely.to_geojson(shapely.set_precision(shape, 1e-5)))
    return geometry


def from_lasso(selected: Any) -> dict[str, Any] | None:
    """The draft of a finished lasso on the map (plotly ``selectedData``), if any."""
    lasso = (selected or {}).get("lassoPoints") if isinstance(selected, dict) else None
    if not isinstance(lasso, dict):
        return None
    # Only a lasso on the map's geo/map subplot has [lon, lat] points; one on the blank
    # placeholder shown before the first render has x/y axis values.
    points = next((v for k, v in lasso.items() if k.startswith(("geo", "map"))), None)
    if not isinstance(points, list) or len(points) < 3:
        return None
    ring = [(float(p[0]), float(p[1])) for p in points if isinstance(p, list | tuple) and len(p) >= 2]
    if len(ring) < 3:
        return None
    return {"geometry": _checked(shapely.Polygon(ring)), "source": "lasso"}


def from_upload(contents: str, filename: str = "") -> dict[str, Any]:
    """The draft of an uploaded GeoJSON file (``dcc.Upload`` data URL): the first polygon
    of a geometry, Feature or FeatureCollection."""
    _, _, encoded = contents.partition(",")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ZoneDraftError(f"{filename or 'upload'}: not a readable file ({exc})") from None
    if len(raw) > MAX_UPLOAD_BYTES:
        raise ZoneDraftError(f"{filename or 'upload'}: larger than {MAX_UPLOAD_BYTES // 1024} KiB")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ZoneDraftError(f"{filename or 'upload'}: not JSON ({exc})") from None
    geometry = _first_polygon(data)
    if geometry is None:
        raise ZoneDraftError(f"{filename or 'upload'}: no Polygon or MultiPolygon in it")
    try:
        shape = shapely.from_geojson(json.dumps(geometry))
    except GEOSException as exc:
        raise ZoneDraftError(f"{filename or 'upload'}: bad geometry ({exc})") from None
    return {"geometry": _checked(shape), "source": "upload"}


def _first_polygon(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        return None
    kind = data.get("type")
    if kind in ("Polygon", "MultiPolygon"):
        return data
    if kind == "Feature":
        return _first_polygon(data.get("geometry"))
    if kind == "FeatureCollection":
        for feature in data.get("features") or ():
            found = _first_polygon(feature)
            if found is not None:
                return found
    return None


def bounds(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    min_x, min_y, max_x, max_y = shapely.from_geojson(json.dumps(geometry)).bounds
    return float(min_x), float(min_y), float(max_x), float(max_y)


def inside(geometry: dict[str, Any], events: pd.DataFrame) -> pd.DataFrame:
    """The events (with ``lat``/``lon``) that lie inside the zone."""
    if events.empty:
        return events
    shape = shapely.from_geojson(json.dumps(geometry))
    shapely.prepare(shape)
    mask = shapely.contains_xy(shape, events["lon"].astype(float).to_numpy(), events["lat"].astype(float).to_numpy())
    return events[mask]
