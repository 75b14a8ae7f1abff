"""Customer-visible milestones: what a customer may see of an internal SKU status.

Internal statuses (``stream.contract.Status``) name warehouse and carrier steps; customers see
a short, fixed ladder of milestones instead, plus a "delayed" flag. This module is the only
place that mapping lives: the page embeds :func:`milestone_table` as JSON so the browser
maps statuses with the very same table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from stream.contract import Status


class Milestone(StrEnum):
    """The customer's ladder, in order; ``delayed`` is a state beside the ladder, not a step."""

    ORDERED = "ordered"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    DELAYED = "delayed"
    RETURNING = "returning"
    RETURNED = "returned"
    CANCELLED = "cancelled"


#: The happy-path ladder shown as the timeline's steps.
LADDER: tuple[Milestone, ...] = (
    Milestone.ORDERED,
    Milestone.PROCESSING,
    Milestone.SHIPPED,
    Milestone.IN_TRANSIT,
    Milestone.OUT_FOR_DELIVERY,
    Milestone.DELIVERED,
)

M = Milestone
_MILESTONE_OF: dict[Status, Milestone] = {
    Status.PAID: M.ORDERED,
    # A backorder is still "being processed" for the customer; the delay shows via the ETA.
    Status.BACKORDERED: M.PROCESSING,
    Status.PICKED: M.PROCESSING,
    Status.PACKED: M.PROCESSING,
    Status.OUTBOUND_SCAN: M.SHIPPED,
    Status.LINEHAUL: M.IN_TRANSIT,
    Status.HUB_ARRIVAL: M.IN_TRANSIT,
    Status.OUT_FOR_DELIVERY: M.OUT_FOR_DELIVERY,
    # A failed attempt keeps the parcel on the last mile; it is shown as a delay notice.
    Status.DELIVERY_FAILED: M.OUT_FOR_DELIVERY,
    Status.DELIVERED: M.DELIVERED,
    Status.EXCEPTION: M.DELAYED,
    Status.RETURN_REQUESTED: M.RETURNING,
    Status.RETURNED: M.RETURNED,
    Status.CANCELLED: M.CANCELLED,
}

#: Statuses that by themselves mean "delayed", with the reason category shown.
_DELAY_REASON_OF: dict[Status, str] = {
    Status.EXCEPTION: "exception",
    Status.DELIVERY_FAILED: "delivery_failed",
    Status.BACKORDERED: "backordered",
}


class DelayReason(StrEnum):
    """Reason categories a customer may see; anything else is shown as ``other``."""

    WEATHER = "weather"
    TRAFFIC = "traffic"
    CARRIER = "carrier"
    WAREHOUSE = "warehouse"
    CAPACITY = "capacity"
    CUSTOMS = "customs"
    ADDRESS = "address"
    DELIVERY_FAILED = "delivery_failed"
    BACKORDERED = "backordered"
    EXCEPTION = "exception"
    #: The order's own delay (the worker's ETA): may arrive after its promise / is past it.
    AT_RISK = "at_risk"
    LATE = "late"
    OTHER = "other"


def milestone_of(status: Status | str) -> Milestone:
    """The milestone a customer sees for one internal status."""
    return _MILESTONE_OF[Status(status)]


def delay_reason_of(status: Status | str) -> DelayReason | None:
    """The delay a status implies by itself (``None`` when it implies none)."""
    reason = _DELAY_REASON_OF.get(Status(status))
    return DelayReason(reason) if reason else None


def reason_category(raw: str | None) -> DelayReason:
    """A customer-safe reason category: known categories pass, free text becomes ``other``."""
    if raw is None:
        return DelayReason.OTHER
    try:
        return DelayReason(raw.strip().lower())
    except ValueError:
        return DelayReason.OTHER


def ladder_rank(milestone: Milestone) -> int:
    """Position on the ladder (-1 for states beside it: delayed, returns, cancelled)."""
    return LADDER.index(milestone) if milestone in LADDER else -1


@dataclass(frozen=True)
class Progress:
    """Per-SKU progress of a split shipment: ``count`` of ``total`` items at ``milestone``."""

    milestone: Milestone
    count: int
    total: int


def progress_summary(statuses: Iterable[Status | str]) -> list[Progress]:
    """Items per milestone, furthest first, e.g. 2 of 3 out for delivery, 1 of 3 in transit."""
    milestones = [milestone_of(s) for s in statuses]
    counts = Counter(milestones)
    total = len(milestones)
    order = {m: i for i, m in enumerate(Milestone)}
    ranked = sorted(counts, key=lambda m: (-ladder_rank(m), order[m]))
    return [Progress(m, counts[m], total) for m in ranked]


def not_scanned_milestones(reached: Iterable[Status | str], not_scanned: Iterable[Status | str]) -> list[Milestone]:
    """Ladder steps a SKU went through without any scan of theirs (its carrier skipped them,
    see ``stream.core.lifecycle``), in ladder order: shown as "not scanned", not as a gap."""
    seen = {milestone_of(s) for s in reached}
    missing = {milestone_of(s) for s in not_scanned}
    return [m for m in LADDER if m in missing and m not in seen]


def milestone_table() -> dict[str, object]:
    """The mapping as plain JSON for the page's script (one source of truth)."""
    return {
        "ladder": [m.value for m in LADDER],
        "of_status": {s.value: m.value for s, m in _MILESTONE_OF.items()},
        "delay_of_status": {s.value: r for s, r in _DELAY_REASON_OF.items()},
        "reasons": [r.value for r in DelayReason],
    }
