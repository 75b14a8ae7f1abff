"""An order's delivery outcome against its promise, and its durable ``order_outcomes`` point (pure).

Orders leave the worker's table after their retention, so "how many delivered orders were
late" cannot be answered from hot state. The worker therefore keeps one InfluxDB point per
order that has an *anchor* time (written by :mod:`stream.stages.outcome_stage`):

* a **delivered** order (every line delivered, cancelled or returned, at least one
  delivered): anchored at its delivery time = when its last delivered line was delivered;
* an **open** order (a line still in flight) with a promise: anchored at its promise
  deadline;
* anything else (open without a promise, cancelled) has no point.

Promise deadline: the order's promise is the earliest ``promised_by`` of its lines, turned
into a deadline by the SLA promise rule (``config/sla.yaml``, :class:`stream.core.sla.SlaPolicy`).
A date-only promise (a rule with ``end_of_day``) means the end of that calendar day in the
rule's time zone, so the deadline is the next local midnight. An order is **late** when it
was delivered at or after the deadline. ``late_days`` counts calendar days from the
promised day to the delivery day (in the rule's time zone, UTC for a rule without one);
``late_7d_or_more`` is a late order with ``late_days >= 7``.

Point (measurement :data:`ORDER_OUTCOMES`): tags ``region``, ``channel``, ``carrier``,
``warehouse`` (the order's first line's facts), ``partition`` (the order's), ``replay`` (the
replay id, absent for live orders); int fields ``delivered``, ``on_time``, ``late``,
``late_7d``, ``no_promise`` (delivered without a promise), ``open`` (open with a promise),
``current`` (1; 0 on a retired point), ``late_days``, ``due_ms``, ``delivered_ms``,
``last_event_ms``; string field ``order_id``. Time: the anchor truncated to the millisecond
plus (offset of the order's first source record mod 1,000,000) ns, as
:func:`stream.core.points.point_time_ns` does for events: orders of one partition never
share a point. When the anchor or a tag changes (an open order is delivered, a later event
brings the region), the old point is *retired*: rewritten with every counter 0, so sums over
the measurement count each order once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

from stream.contract import Status
from stream.core.order_state import OrderState, SkuState, ns_datetime
from stream.core.points import FieldValue, Point, point_time_ns
from stream.core.replay import timeline_of_order
from stream.core.sla import SlaContext, SlaPolicy

ORDER_OUTCOMES = "order_outcomes"
#: Name of the order extension (and of the stage) that keeps the outcome.
OUTCOME_EXTENSION = "outcome"
#: Group dimensions of the delivery statistics (tags of the point).
GROUP_TAGS = ("region", "channel", "carrier", "warehouse")
#: Counter fields of the point (all 0 on a retired point).
COUNTERS = ("delivered", "on_time", "late", "late_7d", "no_promise", "open")
LATE_DAYS_THRESHOLD = 7

_DELIVERED = Status.DELIVERED.value
_MS = 1_000_000

State = Literal["delivered", "open", "cancelled"]


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    state: State
    tags: Mapping[str, str | None]
    last_event_ns: int
    promised_ns: int | None = None
    due_ns: int | None = None
    promise_rule: str | None = None
    delivered_ns: int | None = None
    late: bool | None = None
    late_by_s: int | None = None
    late_days: int | None = None

    @property
    def anchor_ns(self) -> int | None:
        """The instant the order is counted at (see the module doc); ``None``: not counted."""
        if self.state == "delivered":
            return self.delivered_ns
        if self.state == "open":
            return self.due_ns
        return None

    def counters(self) -> dict[str, int]:
        delivered = self.state == "delivered"
        promised = self.due_ns is not None
        return {
            "delivered": int(delivered),
            "on_time": int(delivered and promised and not self.late),
            "late": int(delivered and bool(self.late)),
            "late_7d": int(delivered and bool(self.late) and (self.late_days or 0) >= LATE_DAYS_THRESHOLD),
            "no_promise": int(delivered and not promised),
            "open": int(self.state == "open" and promised),
        }

    def summary(self) -> dict[str, Any]:
        """What the order snapshot shows (``extensions.outcome``, without the point)."""
        out: dict[str, Any] = {"state": self.state}
        if self.promised_ns is not None:
            out["promised_by"] = _iso(self.promised_ns)
        if self.due_ns is not None:
            out["promise_due"] = _iso(self.due_ns)
            out["promise_rule"] = self.promise_rule
        if self.delivered_ns is not None:
            out["delivered_at"] = _iso(self.delivered_ns)
        if self.late is not None:
            out["late"] = self.late
            out["late_by_s"] = self.late_by_s
            out["late_days"] = self.late_days
        return out


def _iso(ns: int) -> str:
    return ns_datetime(ns).isoformat().replace("+00:00", "Z")


def _first(skus: list[SkuState], name: str) -> str | None:
    for s in skus:
        value = getattr(s.facts, name)
        if value:
            return str(value)
    return None


def _delivered_ns(s: SkuState) -> int | None:
    return s.stage_times.get(_DELIVERED)


def order_outcome(order: OrderState, policy: SlaPolicy) -> OrderOutcome:
    """The order's outcome from its current state (see the module doc)."""
    skus = [order.skus[k] for k in sorted(order.skus)]
    tags: dict[str, str | None] = {name: _first(skus, name) for name in GROUP_TAGS}
    delivered = [t for t in (_delivered_ns(s) for s in skus) if t is not None]
    settled = all(s.closed or _delivered_ns(s) is not None for s in skus)
    state: State = "open" if not settled else "delivered" if delivered else "cancelled"
    promises = [s.facts.promised_by_ns for s in skus if s.facts.promised_by_ns is not None]
    promised = min(promises) if promises else None
    due = rule_name = None
    day_zone: ZoneInfo | timezone = UTC
    if promised is not None:
        first = skus[0].facts
        ctx = SlaContext(first.channel, first.warehouse, first.carrier, first.region, first.sku_class or "standard")
        rule = policy.promise(ctx)
        if rule is not None:
            due = round(rule.due(promised / 1e9) * 1e6) * 1000  # float seconds -> exact microseconds
            rule_name = rule.rule
            if rule.end_of_day is not None:
                day_zone = rule.end_of_day
    outcome = OrderOutcome(state, tags, order.last_event_ns, promised, due, rule_name)
    if state != "delivered":
        return outcome
    delivered_ns = max(delivered)
    if due is None or promised is None:
        return OrderOutcome(state, tags, order.last_event_ns, promised, None, None, delivered_ns)
    late = delivered_ns >= due
    days = (
        ns_datetime(delivered_ns).astimezone(day_zone).date() - ns_datetime(promised).astimezone(day_zone).date()
    ).days
    return OrderOutcome(
        state,
        tags,
        order.last_event_ns,
        promised,
        due,
        rule_name,
        delivered_ns,
        late,
        (delivered_ns - due) // 1_000_000_000 if late else 0,
        max(days, 0) if late else 0,
    )


# -- the point -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PointKey:
    """The identity of an ``order_outcomes`` point: its tags and time."""

    tags: Mapping[str, str | None]
    time_ns: int

    def to_list(self) -> list[Any]:
        return [self.time_ns, {k: v for k, v in sorted(self.tags.items()) if v}]

    @classmethod
    def from_list(cls, value: Any) -> PointKey | None:
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], dict):
            return cls({str(k): str(v) for k, v in value[1].items()}, value[0])
        return None


def point_key(order: OrderState, outcome: OrderOutcome, first_offset: int) -> PointKey | None:
    anchor = outcome.anchor_ns
    if anchor is None:
        return None
    tags = dict(outcome.tags)
    tags["partition"] = str(order.partition)
    tags["replay"] = timeline_of_order(dict(order.extensions))
    return PointKey({k: v for k, v in sorted(tags.items()) if v}, point_time_ns(anchor, first_offset))


def _ms(ns: int | None) -> int | None:
    return None if ns is None else ns // _MS


def outcome_point(key: PointKey, outcome: OrderOutcome, order_id: str) -> Point:
    fields: dict[str, FieldValue | None] = {
        **outcome.counters(),
        "current": 1,
        "late_days": outcome.late_days,
        "due_ms": _ms(outcome.due_ns),
        "delivered_ms": _ms(outcome.delivered_ns),
        "last_event_ms": _ms(outcome.last_event_ns),
        "order_id": order_id,
    }
    return Point(ORDER_OUTCOMES, key.tags, fields, key.time_ns)


def retired_point(key: PointKey, order_id: str) -> Point:
    """The point at ``key`` with every counter 0 (the order is counted elsewhere, or not at all)."""
    fields: dict[str, FieldValue | None] = {**dict.fromkeys(COUNTERS, 0), "current": 0, "order_id": order_id}
    return Point(ORDER_OUTCOMES, key.tags, fields, key.time_ns)


def extension_value(outcome: OrderOutcome, key: PointKey | None, first_offset: int) -> dict[str, Any]:
    """``extensions.outcome`` of the order: the summary, plus what the next write needs."""
    return {**outcome.summary(), "first_offset": first_offset, "point": key.to_list() if key else None}


__all__ = [
    "COUNTERS",
    "GROUP_TAGS",
    "ORDER_OUTCOMES",
    "OUTCOME_EXTENSION",
    "OrderOutcome",
    "PointKey",
    "extension_value",
    "order_outcome",
    "outcome_point",
    "point_key",
    "retired_point",
]
