"""The geofence rule file (``config/geofences.yaml``): which files hold which fences.

Each layer names one GeoJSON, Shapefile or GeoPackage file (a path relative to the YAML
file), what kind of place its polygons are, which property is the fence id, which other
properties to carry, and the rules attached to the whole layer: a dwell limit, and for
hubs the stage a SKU advances to on entering. Loaded with :func:`config.rules.load_yaml_model`,
so a bad file fails with one message naming file, field and problem::

    layers:
      - name: jilin_stations
        path: geofences/jilin_stations.geojson
        kind: hub
        id_field: station_id
        attributes: [name, region_id]
        advance_stage_to: hub_arrival
        dwell_limit: PT4H          # ISO 8601, or seconds, or "04:00:00"
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from config.rules import load_yaml_model
from stream.contract import Crs, Status


class FenceKind(StrEnum):
    """What a fenced place is; decides how its events are read downstream."""

    WAREHOUSE = "warehouse"
    HUB = "hub"
    STATION = "station"
    DELIVERY_ZONE = "delivery_zone"
    DELIVERY_STOP = "delivery_stop"
    RESTRICTED = "restricted"
    OTHER = "other"


#: Stages a position alone can justify: arriving at a sorting hub or leaving a warehouse
#: yard. Later stages (out_for_delivery, delivered) need a scan, not a GPS fix.
ADVANCEABLE_STAGES: frozenset[Status] = frozenset({Status.OUTBOUND_SCAN, Status.LINEHAUL, Status.HUB_ARRIVAL})
#: Kinds whose fences may advance a stage.
ADVANCING_KINDS: frozenset[FenceKind] = frozenset({FenceKind.HUB, FenceKind.WAREHOUSE, FenceKind.STATION})

LayerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
FieldName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class GeofenceLayer(BaseModel):
    """One file of fences and the rules shared by all of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: LayerName
    #: Relative paths are resolved against the directory of the YAML file.
    path: Path
    #: Layer inside a multi-layer file (GeoPackage); the first layer when omitted.
    layer: str | None = None
    kind: FenceKind
    id_field: FieldName
    #: Properties copied onto each fence (shown in alerts and the war room).
    attributes: tuple[FieldName, ...] = ()
    advance_stage_to: Status | None = None
    dwell_limit: timedelta | None = None
    #: Offset system of the file's lon/lat: fences drawn on AMap/Tencent maps are GCJ-02,
    #: on Baidu BD-09; they are converted to WGS-84 on load. Projected files are reprojected
    #: from the CRS they declare.
    coords: Crs = Crs.WGS84

    @field_validator("dwell_limit")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    @model_validator(mode="after")
    def _stage_rules(self) -> GeofenceLayer:
        if self.advance_stage_to is None:
            return self
        if self.kind not in ADVANCING_KINDS:
            kinds = ", ".join(sorted(k.value for k in ADVANCING_KINDS))
            raise ValueError(f"advance_stage_to is only allowed for kinds {kinds}, not {self.kind.value}")
        if self.advance_stage_to not in ADVANCEABLE_STAGES:
            stages = ", ".join(sorted(s.value for s in ADVANCEABLE_STAGES))
            raise ValueError(f"advance_stage_to must be one of {stages}, not {self.advance_stage_to.value}")
        return self


class GeofenceConfig(BaseModel):
    """The whole rule file: a list of layers with unique names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: tuple[GeofenceLayer, ...] = Field(default=())

    @field_validator("layers")
    @classmethod
    def _unique_names(cls, layers: tuple[GeofenceLayer, ...]) -> tuple[GeofenceLayer, ...]:
        counts = Counter(layer.name for layer in layers)
        duplicates = sorted(name for name, count in counts.items() if count > 1)
        if duplicates:
            raise ValueError(f"duplicate layer names: {', '.join(duplicates)}")
        return layers


def load_geofence_config(path: Path) -> GeofenceConfig:
    """Read and validate ``config/geofences.yaml``; raises ``config.rules.RuleFileError``."""
    return load_yaml_model(path, GeofenceConfig)


def resolve_layer_path(layer: GeofenceLayer, config_path: Path) -> Path:
    """The layer's file, relative paths taken from the YAML file's directory."""
    return layer.path if layer.path.is_absolute() else config_path.parent / layer.path
