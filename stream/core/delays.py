"""Per-SKU delay tracking: SLA stage timers, the order's promise, at-risk prediction.

:class:`DelayTracker` keeps a :class:`~stream.core.sku_delay.SkuDelay` per in-flight SKU, moves
its stage and promise deadlines as events arrive, and reports its delay state changes
(:mod:`stream.core.sku_delay` says how a state follows from the deadlines and the watermark).

Every SKU has one wake-up in a :class:`DeadlineHeap` (the next of its four moments), so
advancing the watermark touches only SKUs whose state can change.

Determinism: the tracker never reads a clock. A SKU's state depends only on its
partition's events and watermark: lane statistics are kept per partition too (they are
mergeable histograms, combined for ETA queries), so the interleaving of partitions does
not change any SKU's transitions, and the engine (``stream.core.delays_engine``) feeds events
one at a time, so batch boundaries do not either.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import KW_ONLY, dataclass
from typing import Any, Protocol

import h3

from stream.contract import CLOSED, STAGE_RANK, OrderEvent, SkuClass, Status, is_legal
from stream.core.deadline_heap import DeadlineHeap
from stream.core.incident_model import ClusterItem, Values
from stream.core.lane_stats import Lane, LaneStats, PredictionSettings
from stream.core.sku_delay import (
    BAD_STATES,
    BAD_VALUES,
    DelayState,
    DelayTransition,
    SkuDelay,
    SkuDelayView,
    cluster_item,
    cluster_values,
    delay_minutes,
    evaluate,
    sku_key,
)
from stream.core.sla import SlaContext, SlaPolicy

_CLOSED_VALUES = frozenset(s.value for s in CLOSED)
_RANK = {s.value: r for s, r in STAGE_RANK.items()}
# plain strings for the hot path (an enum's ``.value`` is a slow descriptor lookup)
_STATUS_VALUE = {s: s.value for s in Status}
_STATE_VALUE = {s: s.value for s in DelayState}
_DELIVERED = Status.DELIVERED.value
_STANDARD = SkuClass.STANDARD


def _context(s: SkuDelay) -> SlaContext:
    """What the SLA rules match a SKU on."""
    return SlaContext(s.channel, s.warehouse, s.carrier, s.region, s.sku_class)


class ClusterFeed(Protocol):
    """Where the tracker reports flow and bad SKUs (an ``IncidentDetector``)."""

    def observe_flow(self, at: float, values: Values) -> None: ...

    def mark_bad(self, item: ClusterItem) -> float: ...

    def clear(self, key: str, at: float) -> None: ...

    def restore_open(self, item: ClusterItem) -> None: ...


@dataclass(eq=False, repr=False)
class DelayTracker:
    """Delay states and timers of the SKUs of one or more partitions."""

    policy: SlaPolicy
    prediction: PredictionSettings
    _: KW_ONLY
    feed: ClusterFeed | None = None
    h3_resolution: int = 7
    closed_retention: float = 6 * 3600.0

    def __post_init__(self) -> None:
        self._fallback = self.prediction.fallback_fraction
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

    def skus(self) -> Iterable[SkuDelay]:
        """The tracked SKUs (a live view: do not apply events while iterating)."""
        return self._skus.values()

    def view(self, key: str, at: float) -> SkuDelayView | None:
        s = self._skus.get(key)
        if s is None:
            return None
        state, rule, due = evaluate(s, at)
        return SkuDelayView(
            order_id=s.order_id,
            sku=s.sku,
            status=s.status,
            state=state,
            rule=rule,
            delay_minutes=delay_minutes(s, state, due, at),
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
        if self.feed is not None and transition is None and s.state in BAD_VALUES:
            # still bad; if its attributes moved, that is a new episode from now
            s.episode_since = self.feed.mark_bad(cluster_item(s, changed_at, values))
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
                rule = self.policy.promise(_context(s))
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
        deadline = self.policy.resolve(stage, _context(s))
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
    def _refresh(self, s: SkuDelay, t: float, *, at: float, force: bool = False) -> DelayTransition | None:
        state, rule, due = evaluate(s, t)
        value = _STATE_VALUE[state]
        if not force and value == s.state and rule == s.rule:
            return None
        previous = DelayState(s.state)
        was_bad = s.state in BAD_VALUES
        s.state, s.rule, s.due, s.state_since = value, rule, due, at
        closed = s.closed_at is not None
        bad = state in BAD_STATES and not closed
        if self.feed is not None:
            if bad:
                s.episode_since = self.feed.mark_bad(cluster_item(s, at))
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
            delay_minutes=delay_minutes(s, state, due, t),
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

    def _heap(self, partition: int) -> DeadlineHeap:
        heap = self._timers.get(partition)
        if heap is None:
            heap = self._timers[partition] = DeadlineHeap()
        return heap

    def _schedule(self, s: SkuDelay, t: float) -> None:
        heap = self._heap(s.partition)
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
            self._heap(s.partition).schedule(s.key, s.wake)
        if self.feed is not None and s.episode_since is not None:
            self.feed.restore_open(cluster_item(s, s.episode_since))

    def to_dict(self) -> dict[str, Any]:
        return {"skus": [s.to_dict() for s in self._skus.values()]}

    def load(self, data: dict[str, Any]) -> None:
        for raw in data["skus"]:
            self.restore(SkuDelay.from_dict(raw))
