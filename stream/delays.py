"""Per-SKU delay state: SLA stage timers, the order's promise, at-risk prediction.

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

Every SKU has one wake-up in a :class:`DeadlineHeap` (the next of its four moments), so
advancing the watermark touches only SKUs whose state can change.

Determinism: the tracker never reads a clock. A SKU's state depends only on its
partition's events and watermark: lane statistics are kept per partition too (they are
mergeable histograms, combined for ETA queries), so the interleaving of partitions does
not change any SKU's transitions, and the engine (``stream.delays_engine``) feeds events
one at a time, so batch boundaries do not either.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import h3

from stream.contract import CLOSED, STAGE_RANK, OrderEvent, SkuClass, Status, is_legal
from stream.deadline_heap import DeadlineHeap
from stream.incident_model import PART_SEP, ClusterItem, Values
from stream.lane_stats import Lane, LaneStats, PredictionSettings
from stream.sla import SlaContext, SlaPolicy


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
_CLOSED_VALUES = frozenset(s.value for s in CLOSED)
_RANK = {s.value: r for s, r in STAGE_RANK.items()}
# plain strings for the hot path (an enum's ``.value`` is a slow descriptor lookup)
_STATUS_VALUE = {s: s.value for s in Status}
_STATE_VALUE = {s: s.value for s in DelayState}
_DELIVERED = Status.DELIVERED.value
_STANDARD = SkuClass.STANDARD


def sku_key(order_id: str, sku: str) -> str:
    """State key of one SKU line (``|`` cannot occur in ids, see ``stream.contract.Id``)."""
    return f"{order_id}|{sku}"


def _iso(instant: float | None) -> str | None:
    if instant is None:
        return None
    return datetime.fromtimestamp(instant, UTC).isoformat().replace("+00:00", "Z")


class ClusterFeed(Protocol):
    """Where the tracker reports flow and bad SKUs (an ``IncidentDetector``)."""

    def observe_flow(self, at: float, values: Values) -> None: ...

    def mark_bad(self, item: ClusterItem) -> float: ...

    def clear(self, key: str, at: float) -> None: ...

    def restore_open(self, item: ClusterItem) -> None: ...


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

    def context(self) -> SlaContext:
        return SlaContext(self.channel, self.warehouse, self.carrier, self.region, self.sku_class)

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
class DelayTransition:
    """A SKU's delay state changed (or it closed): publish, persist, show."""

    key: str
    order_id: str
    sku: str
    previous: DelayState
    state: DelayState
    rule: str | None
    delay_minutes: float
    due: float | None
    at: float
    status: str
    closed: bool
    promise_late: bool
    lane: Lane

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "sku": self.sku,
            "previous": self.previous.value,
            "delay_state": self.state.value,
            "rule": self.rule,
            "delay_minutes": round(self.delay_minutes, 1),
            "due": _iso(self.due),
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
class SkuDelayView:
    """Read model of one SKU's delay at a given watermark.

    ``promise_late``: delivered after the promise, or still open with the promise passed.
    """

    order_id: str
    sku: str
    status: str
    state: DelayState
    rule: str | None
    delay_minutes: float
    due: float | None
    stage: str | None
    stage_due: float | None
    promise_due: float | None
    promise_late: bool
    closed: bool
    lane: Lane

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "sku": self.sku,
            "status": self.status,
            "delay_state": self.state.value,
            "rule": self.rule,
            "delay_minutes": round(self.delay_minutes, 1),
            "due": _iso(self.due),
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


class DelayTracker:
    """Delay states and timers of the SKUs of one or more partitions."""

    def __init__(
        self,
        policy: SlaPolicy,
        prediction: PredictionSettings,
        *,
        feed: ClusterFeed | None = None,
        h3_resolution: int = 7,
        closed_retention: float = 6 * 3600.0,
    ) -> None:
        self.policy = policy
        self.prediction = prediction
        self.feed = feed
        self.h3_resolution = h3_resolution
        self.closed_retention = closed_retention
        self._fallback = prediction.fallback_fraction
        # Lane statistics are kept per partition: a partition's SKU states then depend
        # only on that partition's own events, whatever the interleaving with others.
        self.lane_stats: dict[int, LaneStats] = {}
        self._skus: dict[str, SkuDelay] = {}
        self._timers: dict[int, DeadlineHeap] = {}
        #: keys whose stored state changed since the last ``take_changed`` (persist them)
        self.changed: set[str] = set()
        self.timer_fires = 0

    # -- queries ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._skus)

    def get(self, key: str) -> SkuDelay | None:
        return self._skus.get(key)

    def keys(self) -> list[str]:
        return sorted(self._skus)

    def view(self, key: str, at: float) -> SkuDelayView | None:
        s = self._skus.get(key)
        if s is None:
            return None
        state, rule, due = self._evaluate(s, at)
        return SkuDelayView(
            order_id=s.order_id,
            sku=s.sku,
            status=s.status,
            state=state,
            rule=rule,
            delay_minutes=self._minutes(s, state, due, at),
            due=due,
            stage=s.stage,
            stage_due=s.stage_due,
            promise_due=s.promise_due,
            promise_late=s.promise_late or (s.closed_at is None and s.promise_due is not None and at >= s.promise_due),
            closed=s.closed_at is not None,
            lane=s.lane(),
        )

    def views(self, at: float) -> Iterator[SkuDelayView]:
        for key in sorted(self._skus):
            view = self.view(key, at)
            if view is not None:
                yield view

    def lanes(self, partition: int) -> LaneStats:
        stats = self.lane_stats.get(partition)
        if stats is None:
            stats = self.lane_stats[partition] = LaneStats(self.prediction)
        return stats

    def pending_timers(self) -> int:
        return sum(len(h) for h in self._timers.values())

    # -- events -------------------------------------------------------------------
    def apply(self, event: OrderEvent, *, partition: int, at: float, watermark: float) -> list[DelayTransition]:
        """Apply one accepted event with effective time ``at``; evaluate at ``watermark``."""
        key = sku_key(event.order_id, event.sku)
        s = self._skus.get(key)
        status = _STATUS_VALUE[event.status]
        closing = False
        if s is None:
            s = SkuDelay(
                key=key,
                order_id=event.order_id,
                sku=event.sku,
                partition=partition,
                status=status,
                rank=_RANK[status],
                status_since=at,
                last_event=at,
                state_since=at,
            )
            if event.status is Status.EXCEPTION:
                s.exception_since = at
            self._skus[key] = s
            self._absorb(s, event, at)
            if event.status is not Status.EXCEPTION:
                s.entered[status] = at
                closing = self._enter(s, status, at, repeat=False)
        else:
            if s.closed_at is not None:
                return []  # closed: stray late events change nothing
            self._absorb(s, event, at)
            closing = self._advance(s, event, at)
        if not closing:
            self._update_promise_risk(s)
        self.changed.add(key)
        values = cluster_values(s)
        if self.feed is not None:
            self.feed.observe_flow(at, values)
        changed_at = max(at, watermark) if not closing else at
        transition = self._refresh(s, watermark, at=changed_at, force=closing)
        if self.feed is not None and transition is None and s.state in _BAD_VALUES:
            # still bad; if its attributes moved, that is a new episode from now
            s.episode_since = self.feed.mark_bad(self._item(s, changed_at, values))
        self._schedule(s, watermark)
        if s.closed_at is not None and self.closed_retention <= 0:
            self._forget(s)
        return [transition] if transition is not None else []

    def _absorb(self, s: SkuDelay, event: OrderEvent, at: float) -> None:
        """Sticky context (channel, warehouse, ...) and where the SKU was last seen."""
        if event.channel:
            s.channel = event.channel
        if event.warehouse:
            s.warehouse = event.warehouse
        if event.carrier:
            s.carrier = event.carrier
        dest = event.attributes.get("dest_region")
        if isinstance(dest, str) and dest:
            s.region = dest
        elif s.region is None and event.region:
            s.region = event.region  # the first region seen is the order's (the customer's)
        if event.sku_class is not _STANDARD:
            s.sku_class = str(event.sku_class)
        if event.order_value is not None:
            s.order_value = event.order_value
        if event.vip:
            s.vip = True
        if event.attributes.get("penalty") is True:  # the order's SLA carries a contractual penalty
            s.penalty = True
        if at >= s.last_event:
            s.last_event = at
            if event.node:
                s.node = event.node
            next_node = event.attributes.get("next_node")
            s.next_node = next_node if isinstance(next_node, str) and next_node else None
            if event.device_id:
                s.device_id = event.device_id
            route = event.attributes.get("route")
            if isinstance(route, str) and route:
                s.route = route
            if event.lat is not None and event.lon is not None:
                s.cell = h3.latlng_to_cell(event.lat, event.lon, self.h3_resolution)
        if event.promised_by is not None:
            promised = event.promised_by.timestamp()
            if promised != s.promised:
                s.promised = promised
                rule = self.policy.promise(s.context())
                s.promise_rule = rule.rule if rule is not None else None
                s.promise_due = rule.due(promised) if rule is not None else None

    def _advance(self, s: SkuDelay, event: OrderEvent, at: float) -> bool:
        """Move the SKU's status if the event is progress; returns True when it closes."""
        new = event.status
        if new is Status.EXCEPTION:
            if at >= s.status_since and s.exception_since is None:
                s.exception_since = at
            return False
        if s.exception_since is not None and at >= s.exception_since:
            s.exception_since = None  # resumed after the exception
        value = _STATUS_VALUE[new]
        rank = _RANK[value]
        if value == s.status:
            if at < s.status_since:
                return False
            return self._enter(s, value, at, repeat=True)
        if rank > s.rank or (at >= s.status_since and is_legal(Status(s.status), new)):
            return self._enter(s, value, at, repeat=False)
        return False  # out of order or a regression: the state machine has the final word

    def _enter(self, s: SkuDelay, status: str, at: float, *, repeat: bool) -> bool:
        """Stage bookkeeping for a (re-)entered status; returns True when the SKU closes."""
        lane = s.lane()
        stats = self.lanes(s.partition)
        rank = _RANK[status]
        starter = self.policy.stage_started_by(status)
        closes = status in _CLOSED_VALUES
        if s.stage is not None and s.stage_started is not None:
            ends = closes or rank >= self.policy.ends_rank(s.stage)
            restarts = starter == s.stage and self.policy.restarts_on_scan(s.stage)
            switches = starter is not None and starter != s.stage
            if ends or restarts or switches:
                stats.observe(lane, f"stage:{s.stage}", max(0.0, at - s.stage_started), at)
                if s.stage_due is not None and at > s.stage_due:
                    s.breaches += 1
                self._stop_stage(s)
        if not repeat:
            s.status, s.rank, s.status_since = status, rank, at
            s.entered.setdefault(status, at)
        if closes:
            s.closed_at = at
            s.promise_late = status == _DELIVERED and s.promise_due is not None and at >= s.promise_due
            s.promise_risk_at = None
            if status == _DELIVERED:
                for entered, since in s.entered.items():
                    if entered != status:
                        stats.observe(lane, f"deliver:{entered}", max(0.0, at - since), at)
            return True
        if starter is not None and s.stage is None:
            self._start_stage(s, starter, at, lane, stats)
        return False

    def _stop_stage(self, s: SkuDelay) -> None:
        s.stage = s.stage_rule = None
        s.stage_started = s.stage_due = s.stage_risk_at = None

    def _start_stage(self, s: SkuDelay, stage: str, at: float, lane: Lane, stats: LaneStats) -> None:
        deadline = self.policy.resolve(stage, s.context())
        if deadline is None:
            return
        due = deadline.due(at)
        s.stage, s.stage_rule, s.stage_breach = stage, deadline.rule, deadline.breach
        s.stage_started, s.stage_due = at, due
        allowed = due - at
        offset = stats.risk_offset(lane, f"stage:{stage}", allowed)
        if offset is None and self._fallback is not None:
            offset = self._fallback * allowed
        s.stage_risk_at = at + offset if offset is not None and offset < allowed else None

    def _update_promise_risk(self, s: SkuDelay) -> None:
        s.promise_risk_at = None
        if s.promise_due is None or s.closed_at is not None:
            return
        since = s.entered.get(s.status, s.status_since)
        allowed = s.promise_due - since
        if allowed <= 0:
            return
        offset = self.lanes(s.partition).risk_offset(s.lane(), f"deliver:{s.status}", allowed)
        if offset is not None and offset < allowed:
            s.promise_risk_at = since + offset

    # -- evaluation ---------------------------------------------------------------
    @staticmethod
    def _evaluate(s: SkuDelay, t: float) -> tuple[DelayState, str | None, float | None]:
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

    @staticmethod
    def _minutes(s: SkuDelay, state: DelayState, due: float | None, t: float) -> float:
        if due is None or state not in (DelayState.LATE, DelayState.STALLED):
            return 0.0
        end = s.closed_at if s.closed_at is not None else t
        return max(0.0, (end - due) / 60.0)

    def _item(self, s: SkuDelay, since: float, values: Values | None = None) -> ClusterItem:
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

    def _refresh(self, s: SkuDelay, t: float, *, at: float, force: bool = False) -> DelayTransition | None:
        state, rule, due = self._evaluate(s, t)
        value = _STATE_VALUE[state]
        if not force and value == s.state and rule == s.rule:
            return None
        previous = DelayState(s.state)
        was_bad = s.state in _BAD_VALUES
        s.state, s.rule, s.due, s.state_since = value, rule, due, at
        closed = s.closed_at is not None
        bad = state in BAD_STATES and not closed
        if self.feed is not None:
            if bad:
                s.episode_since = self.feed.mark_bad(self._item(s, at))
            elif was_bad:
                self.feed.clear(s.key, at)
        if not bad:
            s.episode_since = None
        return DelayTransition(
            key=s.key,
            order_id=s.order_id,
            sku=s.sku,
            previous=previous,
            state=state,
            rule=rule,
            delay_minutes=self._minutes(s, state, due, t),
            due=due,
            at=at,
            status=s.status,
            closed=closed,
            promise_late=s.promise_late,
            lane=s.lane(),
        )

    def _next_wake(self, s: SkuDelay, t: float) -> float | None:
        if s.closed_at is not None:
            return s.closed_at + self.closed_retention
        wake: float | None = None
        for moment in (s.stage_risk_at, s.stage_due, s.promise_risk_at, s.promise_due):
            if moment is not None and moment > t and (wake is None or moment < wake):
                wake = moment
        return wake

    def _schedule(self, s: SkuDelay, t: float) -> None:
        heap = self._timers.get(s.partition)
        if heap is None:
            heap = self._timers[s.partition] = DeadlineHeap()
        wake = self._next_wake(s, t)
        s.wake = wake
        if wake is None:
            heap.cancel(s.key)
        else:
            heap.schedule(s.key, wake)

    def _forget(self, s: SkuDelay) -> None:
        self._skus.pop(s.key, None)
        heap = self._timers.get(s.partition)
        if heap is not None:
            heap.cancel(s.key)
        self.changed.add(s.key)

    def fire(self, partition: int, watermark: float) -> list[DelayTransition]:
        """Fire the partition's timers due at or before ``watermark``."""
        heap = self._timers.get(partition)
        if heap is None:
            return []
        out: list[DelayTransition] = []
        for key in heap.pop_due(watermark):
            self.timer_fires += 1
            s = self._skus.get(key)
            if s is None:
                continue
            if s.closed_at is not None:
                self._forget(s)  # retention over
                continue
            transition = self._refresh(s, watermark, at=watermark)
            if transition is not None:
                out.append(transition)
            self._schedule(s, watermark)
            self.changed.add(key)
        return out

    # -- persistence --------------------------------------------------------------
    def take_changed(self) -> set[str]:
        changed, self.changed = self.changed, set()
        return changed

    def restore(self, s: SkuDelay) -> None:
        """Put back one SKU from its ``to_dict`` form (worker recovery)."""
        self._skus[s.key] = s
        if s.wake is not None:
            heap = self._timers.get(s.partition)
            if heap is None:
                heap = self._timers[s.partition] = DeadlineHeap()
            heap.schedule(s.key, s.wake)
        if self.feed is not None and s.episode_since is not None:
            self.feed.restore_open(self._item(s, s.episode_since))

    def to_dict(self) -> dict[str, Any]:
        return {"skus": [s.to_dict() for s in self._skus.values()]}

    def load(self, data: dict[str, Any]) -> None:
        for raw in data["skus"]:
            self.restore(SkuDelay.from_dict(raw))


_BAD_VALUES = frozenset(s.value for s in BAD_STATES)
