"""The per-SKU state machine: one event applied to its order's state (pure).

An :class:`~stream.core.order_state.OrderState` is what the worker keeps per order (one
:class:`~stream.core.order_state.SkuState` per SKU line). :func:`apply_event` takes the current
state and one validated event and returns the next state and what happened. Nothing here
touches Kafka, InfluxDB or the clock: time comes only from the events.

Event-time rules (see the README, "The event contract"):

- A SKU's status is the result of *folding* its timeline in event-time order (ties broken
  by ``event_id``): each event is checked against the status before it. It is legal when
  :func:`stream.contract.is_legal` says so (a scanned transition) or when it moves forward
  along the :data:`~stream.core.progress.LADDER` (a carrier that hands over and delivers without an
  out-for-delivery scan): missing scans are data, so such a skip is applied and the ladder
  stages it jumped over are recorded on its entry as *not scanned* (``skipped``). Only
  impossible sequences (anything after ``cancelled`` or ``returned``, regressions,
  ``cancelled`` once shipped) are illegal: kept in the timeline, flagged with their reason
  (a data-quality exception), and not applied. Because the fold depends only on the *set*
  of events, any arrival order of the same events ends in the same status.
- An event older than the newest one already recorded arrives *late*: it is inserted in
  the timeline at its time and the fold re-evaluated, which can fill a gap (a missed scan
  making a later event legal) but never regress: ``rank``, the highest progress rank ever
  reached (``exception`` keeps the rank of the status it interrupted), never decreases. If
  the re-evaluation would lower it, the SKU keeps its status (``pinned``) until the fold
  catches up.
- ``exception`` may follow any non-terminal status; after it the SKU may resume with the
  interrupted status or any status legal after it.
- A duplicate ``event_id`` (a producer retry, a channel resend) changes nothing.

Bounded: each SKU keeps its newest :data:`TIMELINE_LIMIT` events; the status reached before
the oldest kept event is folded into ``base``. Dedup covers the kept events, exactly: a window
of 8-byte id hashes per SKU, a hit confirmed by the stored id (:mod:`stream.core.timeline_pack`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from enum import StrEnum

import msgspec

from stream.contract import OrderEvent, SkuClass, Status
from stream.core import timeline_pack
from stream.core.order_state import (
    NO_STAGE_TIMES,
    OrderState,
    Position,
    SkuFacts,
    SkuLines,
    SkuState,
    datetime_ns,
    interned,
    new_order,
    shared_facts,
    sku_times,
    state_record,
    with_stage_time,
)
from stream.core.progress import START, Progress, skipped_by, step
from stream.core.timeline_pack import TimelineEntry

#: Events kept per SKU (newest by event time); older ones are folded into ``base``.
TIMELINE_LIMIT = 32

_intern = sys.intern

#: Status values by member (``Status.X.value`` is a property call; this is a dict lookup).
_V: dict[Status, str] = {s: s.value for s in Status}


class Outcome(StrEnum):
    """What an event did to its SKU."""

    #: Newest event, legal: it set the status.
    APPLIED = "applied"
    #: Older than the newest recorded event: recorded, the status did not regress.
    LATE = "late"
    #: Not a legal step (data-quality exception): recorded with its reason, not applied.
    ILLEGAL = "illegal"
    #: Newest and legal, but the SKU is held at a higher rank (no regression): recorded only.
    HELD = "held"


@state_record
class EventChange:
    """What one accepted (non-duplicate) event did."""

    outcome: Outcome
    entry: TimelineEntry
    before: SkuState | None
    after: SkuState
    #: Timeline neighbours of the new entry, for dwell times (``None`` at either end).
    previous: TimelineEntry | None
    following: TimelineEntry | None
    #: Whether the entry was kept (an event older than a full timeline is not).
    recorded: bool = True

    @property
    def status_changed(self) -> bool:
        return self.before is None or self.before.status is not self.after.status

    @property
    def illegal_reason(self) -> str | None:
        return self.entry.illegal


def entry_changes(change: EventChange) -> list[tuple[TimelineEntry, int]]:
    """The timeline entries one event added (+1) or replaced (-1 for the old version, +1 for
    the new): the new entry, and for an event that did not simply append, every neighbour
    the re-fold re-flagged (a late scan filling a gap shortens the following entry's
    ``skipped``). Counters kept per entry stay exact by adding these."""
    if not change.recorded:
        return []
    before = change.before
    if before is None or (change.following is None and not change.entry.late):
        return [(change.entry, 1)]
    old = {e.event_id: e for e in before.timeline}
    out: list[tuple[TimelineEntry, int]] = []
    for entry in change.after.timeline:
        previous = old.get(entry.event_id)
        if previous is None:
            out.append((entry, 1))
        elif previous.illegal != entry.illegal or previous.skipped != entry.skipped:
            out.extend(((previous, -1), (entry, 1)))
    return out


_SKU_CLASS = {c: c.value for c in SkuClass}


def _facts_from(event: OrderEvent, old: SkuFacts | None, newest: bool) -> SkuFacts:
    """Merge the event's fields into the facts: the newest event wins, a late one only fills gaps."""
    i = interned
    promised = datetime_ns(event.promised_by) if event.promised_by is not None else None
    if old is None:
        return SkuFacts(
            event.qty,
            i(event.region),
            i(event.warehouse),
            i(event.carrier),
            i(event.channel),
            i(event.node),
            promised,
            event.dest_lat,
            event.dest_lon,
            _SKU_CLASS[event.sku_class],
            event.vip,
        )
    if newest:
        return SkuFacts(
            event.qty,
            i(event.region) if event.region is not None else old.region,
            i(event.warehouse) if event.warehouse is not None else old.warehouse,
            i(event.carrier) if event.carrier is not None else old.carrier,
            i(event.channel) if event.channel is not None else old.channel,
            i(event.node) if event.node is not None else old.node,
            promised if promised is not None else old.promised_by_ns,
            event.dest_lat if event.dest_lat is not None else old.dest_lat,
            event.dest_lon if event.dest_lon is not None else old.dest_lon,
            _SKU_CLASS[event.sku_class],
            event.vip or old.vip,
        )
    return SkuFacts(
        old.qty,
        old.region if old.region is not None else i(event.region),
        old.warehouse if old.warehouse is not None else i(event.warehouse),
        old.carrier if old.carrier is not None else i(event.carrier),
        old.channel if old.channel is not None else i(event.channel),
        old.node if old.node is not None else i(event.node),
        old.promised_by_ns if old.promised_by_ns is not None else promised,
        old.dest_lat if old.dest_lat is not None else event.dest_lat,
        old.dest_lon if old.dest_lon is not None else event.dest_lon,
        old.sku_class,
        old.vip or event.vip,
    )


_replace_entry = msgspec.structs.replace


def fold(base: Progress, entries: Iterable[TimelineEntry]) -> tuple[Progress, list[TimelineEntry], dict[str, int]]:
    """Fold entries (time-ordered) from ``base``: the progress, the re-flagged entries and
    the first time each status was applied."""
    progress = base
    flagged: list[TimelineEntry] = []
    reached: dict[str, int] = {}
    for entry in entries:
        result = step(progress, entry.status)
        if isinstance(result, str):
            same = entry.illegal == result and not entry.skipped
            flagged.append(entry if same else _replace_entry(entry, illegal=interned(result), skipped=()))
            continue
        skipped = skipped_by(progress, entry.status)
        progress = result
        reached.setdefault(_V[entry.status], entry.time_ns)
        same = entry.illegal is None and entry.skipped == skipped
        flagged.append(entry if same else _replace_entry(entry, illegal=None, skipped=skipped))
    return progress, flagged, reached


def _status_time(progress: Progress, timeline: Iterable[TimelineEntry], fallback: int) -> int:
    """Time of the newest legal entry with the progress's status."""
    time_ns = fallback
    for entry in timeline:
        if entry.illegal is None and entry.status is progress.status:
            time_ns = entry.time_ns
    return time_ns


def _merge_stage_times(old: bytes, new: Mapping[str, int]) -> bytes:
    for key, value in new.items():
        old = with_stage_time(old, key, value)
    return old


def _sku(
    sku: SkuState,
    *,
    progress: Progress | None = None,
    status_time_ns: int | None = None,
    stage_ns: bytes | None = None,
    position: Position | None,
    facts: SkuFacts,
    timeline: tuple[TimelineEntry, ...],
    pinned: bool | None = None,
) -> SkuState:
    """A changed copy of ``sku`` (explicit, as ``dataclasses.replace`` is slow on this hot path),
    truncated to :data:`TIMELINE_LIMIT` entries."""
    p = progress if progress is not None else Progress(sku.status, sku.interrupted, sku.rank)
    base = sku.base
    excess = len(timeline) - TIMELINE_LIMIT
    if excess > 0:
        dropped, timeline = timeline[:excess], timeline[excess:]
        base, _, _ = fold(base, dropped)
    assert p.status is not None
    return SkuState(
        sku.sku,
        p.status,
        p.interrupted,
        p.rank,
        sku.times
        if status_time_ns is None and stage_ns is None
        else sku_times(
            sku.status_time_ns if status_time_ns is None else status_time_ns,
            sku.stage_ns if stage_ns is None else stage_ns,
        ),
        position,
        facts,
        timeline_pack.pack(timeline),
        base,
        sku.pinned if pinned is None else pinned,
    )


def _entry(
    event: OrderEvent, time_ns: int, late: bool = False, illegal: str | None = None, skipped: tuple[Status, ...] = ()
) -> TimelineEntry:
    i = interned
    return TimelineEntry(
        event.event_id,
        event.status,
        time_ns,
        _intern(event.source),
        i(event.node),
        i(event.region),
        late,
        i(illegal),
        i(event.device_id),
        skipped,
    )


def _first_state(event: OrderEvent, time_ns: int, sibling: SkuFacts | None) -> tuple[SkuState, TimelineEntry]:
    result = step(START, event.status)
    assert not isinstance(result, str)  # any first status is legal
    entry = _entry(event, time_ns)
    position = Position(event.lat, event.lon, time_ns) if event.lat is not None and event.lon is not None else None
    sku = SkuState(
        sku=_intern(event.sku),
        status=event.status,
        interrupted=result.interrupted,
        rank=result.rank,
        times=sku_times(time_ns, with_stage_time(NO_STAGE_TIMES, _V[event.status], time_ns)),
        position=position,
        facts=shared_facts(_facts_from(event, None, True), sibling),
        packed=timeline_pack.pack((entry,)),
    )
    return sku, entry


def apply_to_sku(sku: SkuState | None, event: OrderEvent, time_ns: int, sibling: SkuFacts | None = None) -> EventChange:
    """Apply one new (not duplicate) event to its SKU (``sibling``: facts of another line of
    the order, whose equal values a new SKU shares)."""
    if sku is None:
        after, entry = _first_state(event, time_ns, sibling)
        return EventChange(Outcome.APPLIED, entry, None, after, None, None)
    key = (time_ns, event.event_id)
    timeline = sku.timeline
    newest = not timeline or key > timeline[-1].sort_key
    position = sku.position
    if event.lat is not None and event.lon is not None and (position is None or time_ns >= position.time_ns):
        position = Position(event.lat, event.lon, time_ns)
    facts = shared_facts(_facts_from(event, sku.facts, newest), sku.facts)

    if newest and not sku.pinned:
        # The common case: the fold of timeline + event is one step from the current status.
        previous = timeline[-1] if timeline else None
        result = step(Progress(sku.status, sku.interrupted, sku.rank), event.status)
        if isinstance(result, str):
            entry = _entry(event, time_ns, illegal=result)
            after = _sku(sku, position=position, facts=facts, timeline=timeline + (entry,))
            return EventChange(Outcome.ILLEGAL, entry, sku, after, previous, None)
        entry = _entry(event, time_ns, skipped=skipped_by(sku.progress, event.status))
        stage_ns = with_stage_time(sku.stage_ns, _V[event.status], time_ns)
        after = _sku(
            sku,
            progress=result,
            status_time_ns=time_ns,
            stage_ns=stage_ns,
            position=position,
            facts=facts,
            timeline=timeline + (entry,),
        )
        return EventChange(Outcome.APPLIED, entry, sku, after, previous, None)

    late = not newest
    if late and len(timeline) >= TIMELINE_LIMIT and key < timeline[0].sort_key:
        # Older than everything kept: it cannot change the fold; not recorded (see module doc).
        entry = _entry(event, time_ns, late=True)
        after = _sku(sku, position=position, facts=facts, timeline=timeline)
        return EventChange(Outcome.LATE, entry, sku, after, None, None, recorded=False)

    entry = _entry(event, time_ns, late=late)
    index = _insertion_index(timeline, key)
    inserted = timeline[:index] + (entry,) + timeline[index:]
    progress, flagged, reached = fold(sku.base, inserted)
    new_entries = tuple(flagged)
    entry = new_entries[index]
    previous = new_entries[index - 1] if index > 0 else None
    following = new_entries[index + 1] if index + 1 < len(new_entries) else None
    stage_ns = _merge_stage_times(sku.stage_ns, reached)
    if progress.rank >= sku.rank and progress.status is not None:
        after = _sku(
            sku,
            progress=progress,
            status_time_ns=_status_time(progress, new_entries, sku.status_time_ns),
            stage_ns=stage_ns,
            position=position,
            facts=facts,
            timeline=new_entries,
            pinned=False,
        )
    else:
        # Re-evaluating would lower the rank: keep the status (never regress).
        after = _sku(sku, stage_ns=stage_ns, position=position, facts=facts, timeline=new_entries, pinned=True)
    if entry.illegal is not None:
        outcome = Outcome.ILLEGAL
    elif late:
        outcome = Outcome.LATE
    elif after.pinned:
        outcome = Outcome.HELD
    else:
        outcome = Outcome.APPLIED
    return EventChange(outcome, entry, sku, after, previous, following)


def _insertion_index(timeline: tuple[TimelineEntry, ...], key: tuple[int, str]) -> int:
    index = len(timeline)
    while index > 0 and timeline[index - 1].sort_key > key:
        index -= 1
    return index


def apply_event(
    order: OrderState, event: OrderEvent, time_ns: int | None = None
) -> tuple[OrderState, EventChange | None]:
    """Apply one validated event to its order; ``None`` change means a duplicate (no-op).

    ``time_ns`` is ``event.event_ts_ns`` (passed in when the caller already computed it).
    """
    event_id = event.event_id
    for line in order.skus.values():
        if timeline_pack.contains(line.packed, event_id):
            return order, None
    if time_ns is None:
        time_ns = event.event_ts_ns
    skus = order.skus
    sku = skus.get(event.sku)
    sibling = None if sku is not None or not skus else next(iter(skus.values())).facts
    change = apply_to_sku(sku, event, time_ns, sibling)
    last = order.last_event_ns if order.last_event_ns >= time_ns else time_ns
    return (
        OrderState(
            order.order_id, order.partition, SkuLines.with_line(skus, change.after), last, order.seq, order.extensions
        ),
        change,
    )


def replay(events: Iterable[OrderEvent], partition_of: Mapping[str, int] | None = None) -> dict[str, OrderState]:
    """Apply events in the given order to empty states: the oracle the worker must match."""
    orders: dict[str, OrderState] = {}
    for event in events:
        order = orders.get(event.order_id)
        if order is None:
            order = new_order(event.order_id, (partition_of or {}).get(event.order_id, 0))
        orders[event.order_id], _ = apply_event(order, event)
    return orders
