"""What the exception-clustering detectors work on and publish: the attributes they group
by, their settings, a bad item, a root cause, an incident and its lifecycle events.

Detection: :mod:`stream.core.incident_detector` (lifecycle and records), :mod:`stream.core.root_cause`
(which attribute value explains the bad items), :mod:`stream.core.incident_items` (the bad items
as of an evaluation time). Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerting.incident import IncidentState
from config.durations import Duration

#: Every attribute the detector can group by; the configured order is the tie-break
#: order (earlier = more specific / more actionable).
KNOWN_DIMENSIONS: tuple[str, ...] = (
    "device_id",
    "hub",
    "warehouse",
    "route",
    "carrier_region",
    "carrier",
    "area",
    "region",
    "channel",
    "stage",
    "source",
)
AREA = "area"
#: Composite dimensions: their values join the parts with ``PART_SEP``.
COMPOSITE: dict[str, tuple[str, ...]] = {"carrier_region": ("carrier", "region")}
PART_SEP = "\x1f"

Values = dict[str, tuple[str, ...]]


class IncidentSettings(BaseModel):
    """``incidents:`` (and ``data_quality.incidents:``) in ``config/sla.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    eval_every: Duration = timedelta(minutes=5)
    window: Duration = timedelta(hours=2)
    baseline: Duration = timedelta(hours=24)
    min_count: int = Field(default=8, ge=1)
    min_lift: float = Field(default=3.0, gt=1.0)
    #: family-wise chance level per attribute and evaluation (Bonferroni over its values)
    significance: float = Field(default=1e-3, gt=0.0, lt=1.0)
    explain_ratio: float = Field(default=0.8, gt=0.5, le=1.0)
    resolve_after: Duration = timedelta(minutes=30)
    growth_ratio: float = Field(default=0.2, gt=0.0)
    h3_resolution: int = Field(default=7, ge=0, le=15)
    cell_min_count: int = Field(default=2, ge=1)
    #: every known dimension but ``source`` (the flow checks group by it)
    dimensions: list[str] = Field(default_factory=lambda: [d for d in KNOWN_DIMENSIONS if d != "source"], min_length=1)
    #: findings (data quality) leave the detector when they fall out of the window and are
    #: part of its snapshot; SKU states leave when the SKU recovers and are rebuilt from
    #: the SKU states on restore
    expire_items: bool = False
    sample_size: int = Field(default=20, ge=0, le=1000)

    @field_validator("dimensions")
    @classmethod
    def _dimensions(cls, value: list[str]) -> list[str]:
        return check_dimensions(value, KNOWN_DIMENSIONS)


def check_dimensions(value: list[str], known: tuple[str, ...]) -> list[str]:
    """A settings' list of dimensions: known names, none twice."""
    for name in value:
        if name not in known:
            raise ValueError(f"unknown dimension {name!r} (known: {', '.join(known)})")
    if len(set(value)) != len(value):
        raise ValueError("dimensions must not repeat")
    return value


@dataclass(slots=True)
class ClusterItem:
    """One bad thing: a SKU in a bad delay state, or a data-quality finding."""

    key: str
    order_id: str
    sku: str
    since: float
    label: str  # delay state or finding kind
    values: Values
    until: float | None = None  # when it stopped being bad (None: still is)
    # impact, for the alert tiers: the order's value, VIP, penalty-bearing SLA, promise due
    value: float = 0.0
    vip: bool = False
    penalty: bool = False
    promise: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["values"] = {d: list(v) for d, v in self.values.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterItem:
        return cls(
            key=data["key"],
            order_id=data["order_id"],
            sku=data["sku"],
            since=float(data["since"]),
            label=data["label"],
            values={d: tuple(v) for d, v in data["values"].items()},
            until=data["until"],
            value=float(data.get("value", 0.0)),
            vip=bool(data.get("vip", False)),
            penalty=bool(data.get("penalty", False)),
            promise=data.get("promise"),
        )


@dataclass(frozen=True, slots=True)
class Signature:
    """A root cause: one dimension and its value (several H3 cells for an area)."""

    dim: str
    values: tuple[str, ...]

    @property
    def text(self) -> str:
        if self.dim == AREA:
            extra = f"+{len(self.values) - 1}" if len(self.values) > 1 else ""
            return f"area={self.values[0]}{extra}"
        return ",".join(f"{k}={v}" for k, v in self.root_cause().items())

    def root_cause(self) -> dict[str, Any]:
        if self.dim == AREA:
            lat, lng = _centre(self.values)
            return {"h3_cells": list(self.values), "lat": round(lat, 5), "lon": round(lng, 5)}
        parts = COMPOSITE.get(self.dim)
        if parts is not None:
            return dict(zip(parts, self.values[0].split(PART_SEP), strict=False))
        return {self.dim: self.values[0]}

    def to_dict(self) -> dict[str, Any]:
        """Its fields in a saved incident."""
        return {"dim": self.dim, "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(data["dim"], tuple(data["values"]))


def _centre(cells: tuple[str, ...]) -> tuple[float, float]:
    points = [h3.cell_to_latlng(c) for c in cells]
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


@dataclass(slots=True)
class Incident:
    """State of one incident; ``to_dict``/``from_dict`` for the worker's table."""

    incident_id: str
    kind: str
    signature: Signature
    state: IncidentState
    opened_at: float
    first_seen: float
    last_seen: float
    current: int = 0
    peak: int = 0
    lift: float = 0.0
    share: float = 0.0
    baseline_share: float = 0.0
    p_value: float = 1.0
    cell: str | None = None  # the H3 cell most of its items were last seen in
    labels: dict[str, int] = field(default_factory=dict)
    skus: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)
    current_keys: set[str] = field(default_factory=set)
    series: list[int] = field(default_factory=list)
    exit_series: list[int] = field(default_factory=list)
    quiet_since: float | None = None
    resolved_at: float | None = None
    emitted_state: str = ""
    emitted_count: int = -1
    # impact: sums over its orders, each counted once when it joins (bounded: scalars)
    order_value: float = 0.0
    vip_orders: int = 0
    penalty_orders: int = 0
    min_promise: float | None = None  # earliest promise due among its current items
    #: labels its current items share (see ``LABEL_DIMENSIONS``), e.g. a hub's region
    common: dict[str, str] = field(default_factory=dict)
    #: VIP and penalty orders and order value as last published
    emitted_impact: tuple[int, int, float] = (0, 0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "kind": self.kind,
            **self.signature.to_dict(),
            "state": self.state.value,
            "opened_at": self.opened_at,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "current": self.current,
            "peak": self.peak,
            "lift": self.lift,
            "share": self.share,
            "baseline_share": self.baseline_share,
            "p_value": self.p_value,
            "cell": self.cell,
            "labels": dict(self.labels),
            "skus": sorted(self.skus),
            "orders": sorted(self.orders),
            "current_keys": sorted(self.current_keys),
            "series": list(self.series),
            "exit_series": list(self.exit_series),
            "quiet_since": self.quiet_since,
            "resolved_at": self.resolved_at,
            "emitted_state": self.emitted_state,
            "emitted_count": self.emitted_count,
            "order_value": self.order_value,
            "vip_orders": self.vip_orders,
            "penalty_orders": self.penalty_orders,
            "min_promise": self.min_promise,
            "common": dict(self.common),
            "emitted_impact": list(self.emitted_impact),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        return cls(
            incident_id=data["incident_id"],
            kind=data["kind"],
            signature=Signature.from_dict(data),
            state=IncidentState(data["state"]),
            opened_at=data["opened_at"],
            first_seen=data["first_seen"],
            last_seen=data["last_seen"],
            current=data["current"],
            peak=data["peak"],
            lift=data["lift"],
            share=data["share"],
            baseline_share=data["baseline_share"],
            p_value=data["p_value"],
            cell=data["cell"],
            labels=dict(data["labels"]),
            skus=set(data["skus"]),
            orders=set(data["orders"]),
            current_keys=set(data["current_keys"]),
            series=list(data["series"]),
            exit_series=list(data["exit_series"]),
            quiet_since=data["quiet_since"],
            resolved_at=data["resolved_at"],
            emitted_state=data["emitted_state"],
            emitted_count=data["emitted_count"],
            order_value=float(data.get("order_value", 0.0)),
            vip_orders=int(data.get("vip_orders", 0)),
            penalty_orders=int(data.get("penalty_orders", 0)),
            min_promise=data.get("min_promise"),
            common=dict(data.get("common") or {}),
            emitted_impact=_impact(data.get("emitted_impact")),
        )


def _impact(saved: list[Any] | None) -> tuple[int, int, float]:
    vip, penalty, value = saved or (0, 0, 0.0)
    return int(vip), int(penalty), float(value)


def iso(instant: float) -> str:
    """An instant as the records' UTC timestamp (``2026-01-01T00:00:00Z``)."""
    return datetime.fromtimestamp(instant, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """One lifecycle event a detector emits (opened, updated, resolved), ready for the
    ``order-incidents`` topic (and, encoded by the InfluxDB sink, an ``incidents`` point).
    The alerting engine reads the record back as its own input,
    :class:`alerting.incident.IncidentEvent`."""

    type: str  # incident.opened | incident.updated | incident.resolved
    incident_id: str
    record: dict[str, Any]
    at: float

    @property
    def kafka_key(self) -> bytes:
        return self.incident_id.encode()

    def to_record(self) -> dict[str, Any]:
        """JSON-ready value for ``order-incidents`` (key: :attr:`kafka_key`)."""
        return self.record
