"""The contract of ``orderradar-control``: commands the web tier publishes for the workers,
plus audit records. It lives beside the event contract (:mod:`stream.contract`) because both
sides depend on it: the gateway validates and publishes, the workers read.

Every record is one JSON object ``{type, command_id, actor, at, ...}`` (key: the target id).
The worker applies ``alert_ack``/``alert_resolve``/``silence_create``/``silence_expire`` to
the alerting engine; every worker also reads ``disruption_create``/``disruption_delete``
(the zone feed of the Kafka room) and marks the SKUs inside the zones, and the web instances read
them back to list the zones in the war-room. ``audit`` records are the trail of who did
what. Pure models.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import h3
import shapely.geometry
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from shapely.errors import GEOSException

from alerting.matchers import parse_matcher

Text = Annotated[str, StringConstraints(max_length=500)]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=128)]


def new_command_id() -> str:
    return uuid.uuid4().hex


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    command_id: str = Field(default_factory=new_command_id)
    actor: Ident
    at: AwareDatetime

    @property
    def target(self) -> str:
        return self.actor

    def to_record(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class AlertAck(Command):
    type: Literal["alert_ack"] = "alert_ack"
    alert_id: Ident

    @property
    def target(self) -> str:
        return self.alert_id


class AlertResolve(Command):
    type: Literal["alert_resolve"] = "alert_resolve"
    alert_id: Ident

    @property
    def target(self) -> str:
        return self.alert_id


class SilenceSpec(BaseModel):
    """What a silence mutes and for how long (the body of ``POST /api/v1/silences``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Alertmanager-style matchers: ``kind="hub_stall"``, ``region=~"east|north"``.
    matchers: tuple[Annotated[str, StringConstraints(max_length=300)], ...] = Field(min_length=1, max_length=20)
    ends_at: AwareDatetime | None = None
    duration_s: int | None = Field(default=None, ge=60, le=30 * 86400)
    until_resolved: bool = False
    comment: Text = ""

    @field_validator("matchers")
    @classmethod
    def _parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(parse_matcher(text)) for text in value)

    @model_validator(mode="after")
    def _one_end(self) -> SilenceSpec:
        given = (self.ends_at is not None) + (self.duration_s is not None) + int(self.until_resolved)
        if given != 1:
            raise ValueError("give exactly one of ends_at, duration_s or until_resolved=true")
        return self


class SilenceCreate(Command, SilenceSpec):
    type: Literal["silence_create"] = "silence_create"


class SilenceExpire(Command):
    type: Literal["silence_expire"] = "silence_expire"
    silence_id: Ident

    @property
    def target(self) -> str:
        return self.silence_id


class ZoneDeclaration(BaseModel):
    """A disruption zone as staff declare it (weather, road closure, hub outage): where,
    when, why. The worker turns it into :class:`geo.disruptions.DisruptionZone` polygons.

    Where is any of a GeoJSON ``Polygon``/``MultiPolygon`` (WGS-84), H3 cells, or region
    names; at least one is required.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    geometry: dict[str, Any] | None = None
    h3_cells: tuple[str, ...] = Field(default=(), max_length=5000)
    regions: tuple[Annotated[str, StringConstraints(min_length=1, max_length=64)], ...] = Field(
        default=(), max_length=100
    )
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime
    reason: Annotated[str, StringConstraints(max_length=64)] = ""
    note: Text = ""

    @field_validator("geometry")
    @classmethod
    def _polygon(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        if value.get("type") not in ("Polygon", "MultiPolygon"):
            raise ValueError("must be a GeoJSON Polygon or MultiPolygon")
        try:
            shape = shapely.geometry.shape(value)
        except (GEOSException, ValueError, TypeError, IndexError, KeyError) as exc:
            raise ValueError(f"is not valid GeoJSON: {exc}") from None
        if shape.is_empty or not shape.is_valid:
            raise ValueError("polygon is empty or self-intersecting")
        min_x, min_y, max_x, max_y = shape.bounds
        if min_x < -180 or max_x > 180 or min_y < -90 or max_y > 90:
            raise ValueError("coordinates must be WGS-84 [lon, lat]")
        return value

    @field_validator("h3_cells")
    @classmethod
    def _cells(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [cell for cell in value if not h3.is_valid_cell(cell)]
        if bad:
            raise ValueError(f"not H3 cells: {bad[:5]}")
        return value

    @model_validator(mode="after")
    def _somewhere(self) -> ZoneDeclaration:
        if self.geometry is None and not self.h3_cells and not self.regions:
            raise ValueError("give geometry, h3_cells or regions")
        if self.starts_at is not None and self.starts_at >= self.ends_at:
            raise ValueError("starts_at must be before ends_at")
        return self


class DisruptionCreate(Command):
    type: Literal["disruption_create"] = "disruption_create"
    disruption_id: Ident
    zone: ZoneDeclaration

    @property
    def target(self) -> str:
        return self.disruption_id


class DisruptionDelete(Command):
    type: Literal["disruption_delete"] = "disruption_delete"
    disruption_id: Ident

    @property
    def target(self) -> str:
        return self.disruption_id


class AuditRecord(Command):
    """Who did what, when, to what, and whether it went through."""

    type: Literal["audit"] = "audit"
    action: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    subject: Annotated[str, StringConstraints(max_length=256)] = ""
    outcome: Literal["ok", "denied", "failed"] = "ok"
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def target(self) -> str:
        return self.subject or self.actor


def disruption_change(record: dict[str, Any], now: datetime) -> tuple[str, dict[str, Any] | None] | None:
    """What a control record means for the list of disruption zones: ``(id, zone or None)``
    for creations and deletions (expired zones read as deleted), ``None`` for other types."""
    kind = record.get("type")
    if kind == "disruption_create":
        created = DisruptionCreate.model_validate(record)
        if created.zone.ends_at <= now:
            return created.disruption_id, None
        item = {
            "disruption_id": created.disruption_id,
            "created_by": created.actor,
            "created_at": created.at.isoformat(),
            **created.zone.model_dump(mode="json"),
        }
        return created.disruption_id, item
    if kind == "disruption_delete":
        return DisruptionDelete.model_validate(record).disruption_id, None
    return None
