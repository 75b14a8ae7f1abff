"""The incident event the alerting engine consumes (topic ``order-incidents``).

The delay/clustering stage publishes one of these every time an incident opens, changes
or resolves. Alerting never looks at raw order events: an incident is already the unit of
impact ("Carrier X @ Hub Y: 412 orders stalled since 10:40").
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints


class IncidentState(StrEnum):
    OPEN = "open"
    GROWING = "growing"
    STABLE = "stable"
    RECOVERING = "recovering"
    RESOLVED = "resolved"


class IncidentKind(StrEnum):
    """Kinds known today. ``IncidentEvent.kind`` also accepts new lowercase kinds, so the
    clustering stage can add one without a lockstep release of alerting."""

    HUB_STALL = "hub_stall"
    CARRIER_SLOWDOWN = "carrier_slowdown"
    REGION_DISRUPTION = "region_disruption"
    DATA_QUALITY = "data_quality"
    ORDER_LATE = "order_late"
    FLOW = "flow"


#: Label names the engine sets itself; an incident may not carry them in ``labels``.
RESERVED_LABELS = frozenset({"kind", "state", "tier", "incident_id", "alert_id"})

#: Labels the clustering stage is expected to fill when they apply.
KNOWN_LABELS = ("region", "warehouse", "node", "carrier", "channel", "device_id")

_LABEL_NAME = r"^[a-z_][a-z0-9_]{0,63}$"
_MAX_LABELS = 24


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > _MAX_LABELS:
        raise ValueError(f"at most {_MAX_LABELS} labels, got {len(labels)}")
    reserved = sorted(RESERVED_LABELS & labels.keys())
    if reserved:
        raise ValueError(f"label names {reserved} are reserved for the engine")
    return {name: value for name, value in labels.items() if value != ""}


LabelName = Annotated[str, StringConstraints(pattern=_LABEL_NAME)]
LabelValue = Annotated[str, StringConstraints(max_length=200)]
Labels = Annotated[dict[LabelName, LabelValue], AfterValidator(_check_labels)]


class FlowCounts(BaseModel):
    """What a flow check (``stream.core.flow_anomaly``) saw: events observed against the expected
    count over its window, so a notification says "scans at 20% of normal for 6 min; ~140
    parcel scans behind" rather than "0 orders". The shortfall and excess are estimates
    (``stream.core.flow_incidents``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    observed: float = Field(ge=0)
    expected: float = Field(ge=0)
    window_s: float | None = Field(default=None, ge=0)
    #: how long the drop (surge) has lasted, in event time, as of the snapshot
    duration_s: float | None = Field(default=None, ge=0)
    #: scans missing since a drop began / orders above normal since a surge began
    shortfall: float = Field(default=0.0, ge=0)
    excess: float = Field(default=0.0, ge=0)
    #: open orders at the key (``None``: the worker does not know them, e.g. a source)
    in_flight: int | None = Field(default=None, ge=0)

    @property
    def ratio(self) -> float | None:
        """Observed as a share of expected (``None`` without an expectation)."""
        return self.observed / self.expected if self.expected > 0 else None


class IncidentEvent(BaseModel):
    """One incident snapshot. Later snapshots (by ``updated_at``) replace earlier ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    incident_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    kind: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    state: IncidentState
    labels: Labels = Field(default_factory=dict)
    affected_orders: int = Field(default=0, ge=0)
    affected_skus: int = Field(default=0, ge=0)
    order_value: float = Field(default=0.0, ge=0)
    vip_orders: int = Field(default=0, ge=0)
    #: Orders whose SLA carries a contractual penalty (marketplace or B2B).
    penalty_orders: int = Field(default=0, ge=0)
    #: Minutes left until the earliest customer promise, as of ``updated_at``;
    #: negative once the promise is broken, ``None`` when unknown.
    min_minutes_to_promise: float | None = None
    first_seen: AwareDatetime
    updated_at: AwareDatetime
    title: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    #: A flow incident's counts (kind ``flow``), ``None`` for the others.
    flow: FlowCounts | None = None

    def minutes_to_promise_at(self, now: datetime) -> float | None:
        """Time left to the promise at ``now``: the clock keeps running between snapshots."""
        if self.min_minutes_to_promise is None:
            return None
        return self.min_minutes_to_promise - (now - self.updated_at).total_seconds() / 60.0

    def match_labels(self) -> dict[str, str]:
        """Labels routes, inhibition rules and silences match on (tier is added by the engine)."""
        return {
            **self.labels,
            "kind": self.kind,
            "state": self.state.value,
            "incident_id": self.incident_id,
        }
