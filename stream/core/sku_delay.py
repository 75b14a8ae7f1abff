"""The delay state of one SKU: its record, its evaluation, what it reports (pure).

Each in-flight SKU carries at most two deadlines: the timer of its current stage (from
``config/sla.yaml``, e.g. paid -> outbound_scan within 24 business hours) and its
promise (``promised_by``). Its delay state is a pure function of those deadlines, the
at-risk moments predicted from lane statistics, and the watermark ``t``:

* ``exception``: its last event was an exception scan;
* ``stalled`` / ``late``: ``t`` passed the stage deadline (the stage says which) or the
  promise (``late``); the rule that fired and the minutes of delay come with it;
* ``at_risk``: ``t`` passed the moment from which ``t + p90(remaining)`` exceeds a deadline;
  that moment is computed once when the stage starts (:meth:`LogHistogram.risk_offset`),
  so no SKU needs re-examining until then;
* ``on_track`` otherwise. A closed SKU is ``late`` when it was delivered after the promise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from stream.contract import SkuClass
from stream.core.incident_model import PART_SEP, ClusterItem, Values
from stream.core.lane_stats import Lane


class DelayState(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    LATE = "late"
    STALLED = "stalled"
    EXCEPTION = "exception"


SEVERITY: dict[DelayState, int] = {
    DelayState.ON_TRACK: 0,
    DelayState.AT_RISK: 1,
    DelayState.LATE: 2,
    DelayState.STALLED: 3,
    DelayState.EXCEPTION: 4,
}
#: States that are clustered into incidents.
BAD_STATES: frozenset[DelayState] = frozenset({DelayState.LATE, DelayState.STALLED, DelayState.EXCEPTION})
#: Words for incident titles, per delay state.
DELAY_TITLES: dict[str, str] = {
    "late": "SKUs late",
    "stalled": "SKUs stalled",
    "exception": "SKUs in exception",
}
#: The values of :data:`BAD_STATES` (a SKU keeps its state as a plain string).
BAD_VALUES = frozenset(s.value for s in BAD_STATES)


def sku_key(order_id: str, sku: str) -> str:
    """State key of one SKU line (``|`` cannot occur in ids, see ``stream.contract.Id``)."""
    return f"{order_id}|{sku}"


def _iso(instant: float | None) -> str | None:
    if instant is None:
        return None
    return datetime.fromtimestamp(instant, UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class SkuDelay:
    """Everything the tracker keeps about one SKU; plain values, see ``to_dict``."""

    key: str
    order_id: str
    sku: str
    partition: int
    status: str
    rank: int
    status_since: float
    last_event: float
    channel: str | None = None
    warehouse: str | None = None
    carrier: str | None = None
    region: str | None = None
    sku_class: str = SkuClass.STANDARD.value
    node: str | None = None
    next_node: str | None = None
    device_id: str | None = None
    route: str | None = None
    cell: str | None = None
    stage: str | None = None
    stage_rule: str | None = None
    stage_breach: str = "late"
    stage_started: float | None = None
    stage_due: float | None = None
    stage_risk_at: float | None = None
    promised: float | None = None
    promise_rule: str | None = None
    promise_due: float | None = None
    promise_risk_at: float | None = None
    exception_since: float | None = None
    entered: dict[str, float] = field(default_factory=dict)
    state: str = DelayState.ON_TRACK.value
    rule: str | None = None
    due: float | None = None
    state_since: float = 0.0
    episode_since: float | None = None  # start of the current bad episode as clustered
    closed_at: float | None = None
    promise_late: bool = False
    breaches: int = 0
    wake: float | None = None
    #: impact inputs of the alert tiers (sticky: the last value given wins)
    order_value: float | None = None
    vip: bool = False
    penalty: bool = False

    def lane(self) -> Lane:
        return Lane(self.warehouse, self.carrier, self.region)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _SKU_FIELDS}
        data["entered"] = dict(self.entered)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SkuDelay:
        missing = [name for name in _SKU_FIELDS if name not in data and name not in _OPTIONAL_FIELDS]
        if missing:
            raise ValueError(f"SKU delay state lacks {', '.join(missing)}")
        return cls(**{name: data[name] for name in _SKU_FIELDS if name in data})


_SKU_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(SkuDelay))
#: Added later: states saved before them restore with the defaults.
_OPTIONAL_FIELDS = frozenset({"order_value", "vip", "penalty"})


@dataclass(frozen=True, slots=True)
class DelayReading:
    """One SKU's delay as read at some moment: what a transition and a view share.

    ``promise_late``: delivered after the promise (a view: or still open with it passed).
    """

    order_id: str
    sku: str
    status: str
    state: DelayState
    rule: str | None
    delay_minutes: float
    due: float | None
    closed: bool
    promise_late: bool
    lane: Lane

    def _reading(self) -> dict[str, Any]:
        return {
            "delay_state": self.state.value,
            "rule": self.rule,
            "delay_minutes": round(self.delay_minutes, 1),
            "due": _iso(self.due),
        }


@dataclass(frozen=True, slots=True)
class DelayTransition(DelayReading):
    """A SKU's delay state changed (or it closed): publish, persist, show."""

    key: str
    previous: DelayState
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "sku": self.sku,
            "previous": self.previous.value,
            **self._reading(),
            "at": _iso(self.at),
            "status": self.status,
            "closed": self.closed,
            "promise_late": self.promise_late,
            "lane": {
                "warehouse": self.lane.warehouse,
                "carrier": self.lane.carrier,
                "region": self.lane.region,
            },
        }


@dataclass(frozen=True, slots=True)
class SkuDelayView(DelayReading):
    """Read model of one SKU's delay at a given watermark."""

    stage: str | None
    stage_due: float | None
    promise_due: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "sku": self.sku,
            "status": self.status,
            **self._reading(),
            "stage": self.stage,
            "stage_due": _iso(self.stage_due),
            "promise_due": _iso(self.promise_due),
            "promise_late": self.promise_late,
            "closed": self.closed,
        }


def cluster_values(s: SkuDelay) -> Values:
    """Root-cause attributes of a SKU, as the incident detector groups them.

    ``hub`` is the node expected to scan the SKU next: the ``next_node`` a linehaul scan
    sent it to, else the node of its last scan. A hub that stops scanning strands both
    the parcels inside it and those on their way to it; the hub they left did its job.
    ``route`` is ``attributes.route`` when the source gives one, else warehouse>region.
    ``area`` is the H3 cell of the last fix, except on a linehaul leg. ``stage`` is the SLA
    stage the SKU is in: the parent of everything when a whole tier is late at once.
    """
    values: Values = {}
    if s.warehouse:
        values["warehouse"] = (s.warehouse,)
    hub = s.next_node or s.node
    if hub:
        values["hub"] = (hub,)
    if s.carrier:
        values["carrier"] = (s.carrier,)
        if s.region:
            values["carrier_region"] = (s.carrier + PART_SEP + s.region,)
    if s.region:
        values["region"] = (s.region,)
    if s.channel:
        values["channel"] = (s.channel,)
    if s.device_id:
        values["device_id"] = (s.device_id,)
    route = s.route or (f"{s.warehouse}>{s.region}" if s.warehouse and s.region else None)
    if route:
        values["route"] = (route,)
    if s.cell and not s.next_node:
        values["area"] = (s.cell,)  # on a linehaul leg the last fix is where it left from
    if s.stage:
        values["stage"] = (s.stage,)
    return values


def evaluate(s: SkuDelay, t: float) -> tuple[DelayState, str | None, float | None]:
    """The SKU's delay state at watermark ``t``: state, rule that fired, deadline."""
    if s.closed_at is not None:
        if s.promise_late:
            return DelayState.LATE, s.promise_rule, s.promise_due
        return DelayState.ON_TRACK, None, None
    if s.exception_since is not None:
        return DelayState.EXCEPTION, "exception", None
    best: tuple[DelayState, str | None, float | None] | None = None
    if s.stage_due is not None and t >= s.stage_due:
        state = DelayState.STALLED if s.stage_breach == "stalled" else DelayState.LATE
        best = (state, s.stage_rule, s.stage_due)
    if (
        s.promise_due is not None
        and t >= s.promise_due
        and (best is None or (best[0] is DelayState.LATE and s.promise_due < (best[2] or 0.0)))
    ):
        best = (DelayState.LATE, s.promise_rule, s.promise_due)
    if best is not None:
        return best
    if s.stage_risk_at is not None and t >= s.stage_risk_at:
        return DelayState.AT_RISK, s.stage_rule, s.stage_due
    if s.promise_risk_at is not None and t >= s.promise_risk_at:
        return DelayState.AT_RISK, s.promise_rule, s.promise_due
    return DelayState.ON_TRACK, None, None


def delay_minutes(s: SkuDelay, state: DelayState, due: float | None, t: float) -> float:
    """Minutes past ``due`` of a late or stalled SKU (until it closed), else 0."""
    if due is None or state not in (DelayState.LATE, DelayState.STALLED):
        return 0.0
    end = s.closed_at if s.closed_at is not None else t
    return max(0.0, (end - due) / 60.0)


def cluster_item(s: SkuDelay, since: float, values: Values | None = None) -> ClusterItem:
    """The SKU as the incident detector clusters it, bad since ``since``."""
    return ClusterItem(
        key=s.key,
        order_id=s.order_id,
        sku=s.sku,
        since=since,
        label=s.state,
        values=values if values is not None else cluster_values(s),
        value=s.order_value or 0.0,
        vip=s.vip,
        penalty=s.penalty,
        promise=s.promise_due,
    )
