"""Impact tiers: P4 dashboard only, P3 chat, P2 on-call, P1 on-call plus manager.

A tier is computed from what the incident does to customers (orders, SKUs, value, VIP
and penalty-bearing orders, time left to the promise, duration), not from a static
severity. Each level lists condition sets; a level applies when any one set holds in
full. The highest applying level wins; P4 is the floor.

A flow incident (a hub's scans stopping) is found minutes before its parcels turn late,
with an estimated size; the ``*_flow_*`` thresholds read what its check saw (see
:class:`alerting.incident.FlowCounts`) and hold for no other incident.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerting.escalation import Target
from alerting.incident import IncidentEvent, IncidentState
from config.durations import Duration


class Tier(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def severity(self) -> int:
        """Bigger is worse: P1 -> 4, P4 -> 1."""
        return 5 - int(self.value[1])


class Condition(BaseModel):
    """All given thresholds must hold (an empty condition is rejected)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_affected_orders: int | None = Field(default=None, ge=0)
    min_affected_skus: int | None = Field(default=None, ge=0)
    min_order_value: float | None = Field(default=None, ge=0)
    min_vip_orders: int | None = Field(default=None, ge=0)
    min_penalty_orders: int | None = Field(default=None, ge=0)
    #: Holds when the earliest promise is at most this many minutes away (or broken).
    max_minutes_to_promise: float | None = None
    min_duration: Duration | None = None
    #: A flow drop still firing with at most this share of its expected scans in the check's window.
    max_flow_ratio: float | None = Field(default=None, ge=0, lt=1)
    #: A flow drop or surge that has lasted this long (event time, from its first window on).
    min_flow_duration: Duration | None = None
    #: A flow drop with at least this many parcel scans missing since it began (estimate).
    min_flow_shortfall: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.model_fields_set:
            raise ValueError("a condition needs at least one threshold")
        return self

    def holds(self, incident: IncidentEvent, now: datetime) -> bool:
        checks: list[bool] = []
        if self.min_affected_orders is not None:
            checks.append(incident.affected_orders >= self.min_affected_orders)
        if self.min_affected_skus is not None:
            checks.append(incident.affected_skus >= self.min_affected_skus)
        if self.min_order_value is not None:
            checks.append(incident.order_value >= self.min_order_value)
        if self.min_vip_orders is not None:
            checks.append(incident.vip_orders >= self.min_vip_orders)
        if self.min_penalty_orders is not None:
            checks.append(incident.penalty_orders >= self.min_penalty_orders)
        if self.max_minutes_to_promise is not None:
            left = incident.minutes_to_promise_at(now)
            checks.append(left is not None and left <= self.max_minutes_to_promise)
        if self.min_duration is not None:
            checks.append(now - incident.first_seen >= self.min_duration)
        if self.max_flow_ratio is not None or self.min_flow_duration is not None or self.min_flow_shortfall is not None:
            checks.append(self._flow_holds(incident))
        return all(checks)

    def _flow_holds(self, incident: IncidentEvent) -> bool:
        flow = incident.flow
        if flow is None:
            return False
        checks: list[bool] = []
        if self.max_flow_ratio is not None:
            ratio = flow.ratio
            firing = incident.state not in (IncidentState.RECOVERING, IncidentState.RESOLVED)
            checks.append(flow.check == "drop" and firing and ratio is not None and ratio <= self.max_flow_ratio)
        if self.min_flow_duration is not None:
            lasted = flow.duration_s
            checks.append(lasted is not None and lasted >= self.min_flow_duration.total_seconds())
        if self.min_flow_shortfall is not None:
            checks.append(flow.check == "drop" and flow.shortfall >= self.min_flow_shortfall)
        return all(checks)


class TierLevel(BaseModel):
    """When a tier applies and what it does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: tuple[Condition, ...] = ()
    #: Send chat/route notifications (P3 and up).
    notify: bool = True
    #: Start the route's escalation policy (P2 and up).
    page: bool = False
    #: Extra targets told once when an alert reaches this tier (P1: the manager).
    also_notify: tuple[Target, ...] = ()


def _default_levels() -> dict[Tier, TierLevel]:
    return {
        Tier.P1: TierLevel(when=(Condition(min_affected_orders=1000),), page=True),
        Tier.P2: TierLevel(when=(Condition(min_affected_orders=100),), page=True),
        Tier.P3: TierLevel(when=(Condition(min_affected_orders=10),)),
        Tier.P4: TierLevel(notify=False),
    }


class TierPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A tier falls only after the lower tier held this long, so a flapping count
    #: does not page, unpage and page again.
    downgrade_after: Duration = timedelta(minutes=10)
    levels: dict[Tier, TierLevel] = Field(default_factory=_default_levels)

    @model_validator(mode="after")
    def _levels_complete(self) -> TierPolicy:
        missing = [t.value for t in Tier if t not in self.levels]
        if missing:
            raise ValueError(f"levels: missing tiers {missing} (all of P1..P4 are required)")
        if self.levels[Tier.P4].when:
            raise ValueError("levels.P4.when: P4 is the floor and takes no conditions")
        for tier in (Tier.P1, Tier.P2, Tier.P3):
            if not self.levels[tier].when:
                raise ValueError(f"levels.{tier.value}.when: needs at least one condition")
        return self

    def level(self, tier: Tier) -> TierLevel:
        return self.levels[tier]

    def compute(self, incident: IncidentEvent, now: datetime) -> Tier:
        """The tier the incident's impact calls for at ``now`` (no hysteresis)."""
        for tier in (Tier.P1, Tier.P2, Tier.P3):
            if any(cond.holds(incident, now) for cond in self.levels[tier].when):
                return tier
        return Tier.P4


def next_tier(
    current: Tier, computed: Tier, lower_since: datetime | None, now: datetime, hold: timedelta
) -> tuple[Tier, datetime | None]:
    """Apply hysteresis: rise at once, fall only after ``hold``.

    Returns the effective tier and the (possibly new) time the lower tier was first seen.
    """
    if computed.severity >= current.severity:
        return computed, None
    since = lower_since or now
    if now - since >= hold:
        return computed, None
    return current, since
