"""The engine's state: plain, validated, JSON-serializable models.

Kept in a Faust table (changelog) by the worker: ``AlertEngine.to_dict()`` after every
call, ``AlertEngine.from_dict()`` on start. Nothing here holds a clock, a socket or a
secret.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from alerting.escalation import EscalationProgress
from alerting.incident import IncidentEvent, IncidentState
from alerting.schedules import Override
from alerting.silences import Silence
from alerting.tier import Tier

STATE_VERSION = 1


class IncidentRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: IncidentEvent
    #: Effective tier (after hysteresis).
    tier: Tier
    #: Since when the computed tier has been below ``tier`` (pending downgrade).
    lower_since: AwareDatetime | None = None
    alert_ids: list[str] = []
    silenced_by: list[str] = []
    inhibited_by: list[str] = []
    resolved_at: AwareDatetime | None = None
    #: Set when someone resolved its alert by hand: the incident stays out of new alerts
    #: until its tier rises above this one (or it resolves and reopens).
    closed_at_tier: Tier | None = None

    @property
    def incident_id(self) -> str:
        return self.event.incident_id

    @property
    def active(self) -> bool:
        return self.resolved_at is None and self.event.state is not IncidentState.RESOLVED

    @property
    def muted(self) -> bool:
        return bool(self.silenced_by or self.inhibited_by)

    def labels(self) -> dict[str, str]:
        return {**self.event.match_labels(), "tier": self.tier.value}


class AlertStatus(StrEnum):
    PENDING = "pending"  # waiting out group_wait
    FIRING = "firing"
    ACKED = "acked"
    RESOLVED = "resolved"


class AlertRecord(BaseModel):
    """One alert: the incidents of one route and group key, notified and escalated together."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str
    route_id: str
    group_key: str
    group_labels: dict[str, str]
    receiver: str
    escalation_policy: str | None
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    members: list[str]
    tier: Tier
    status: AlertStatus = AlertStatus.PENDING
    muted: bool = False
    created_at: AwareDatetime
    next_flush_at: AwareDatetime | None = None
    last_sent_at: AwareDatetime | None = None
    fingerprint: str = ""
    #: Receivers told about this alert; they get the ack and resolved notices.
    notified: list[str] = []
    #: Tiers whose ``also_notify`` targets were told already.
    also_notified: list[Tier] = []
    escalation: EscalationProgress | None = None
    acked_by: str | None = None
    acked_at: AwareDatetime | None = None
    resolved_by: str | None = None
    resolved_at: AwareDatetime | None = None
    #: Counter behind the deterministic notification and record ids.
    seq: int = 0

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{self.alert_id}/{prefix}{self.seq}"


class EngineState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = STATE_VERSION
    incidents: dict[str, IncidentRecord] = Field(default_factory=dict)
    alerts: dict[str, AlertRecord] = Field(default_factory=dict)
    #: Group key -> id of the alert not yet resolved for it.
    open_groups: dict[str, str] = Field(default_factory=dict)
    silences: dict[str, Silence] = Field(default_factory=dict)
    #: Overrides added at run time, by schedule.
    overrides: dict[str, list[Override]] = Field(default_factory=dict)
    #: Counter behind silence ids and their record ids.
    seq: int = 0

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq}"


def earliest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None
