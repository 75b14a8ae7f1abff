"""The per-SKU state machine and the per-order state that holds it (pure).

An :class:`OrderState` is what the worker keeps per order in its Faust table: one
:class:`SkuState` per SKU line, the order-updates ``seq`` and the SKUs' bounded timelines,
whose event ids are also the dedup state. :func:`apply_event` takes the current
state and one validated event and returns the next state and what happened. Nothing here
touches Kafka, InfluxDB or the clock: time comes only from the events.

Event-time rules (see the README, "The event contract"):

- A SKU's status is the result of *folding* its timeline in event-time order (ties broken
  by ``event_id``): each event is checked against the status before it. It is legal when
  :func:`stream.contract.is_legal` says so (a scanned transition) or when it moves forward
  along the :data:`LADDER` (a carrier that hands over and delivers without an
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
of 8-byte id hashes per SKU, a hit confirmed by the stored id (:mod:`stream.timeline_pack`).

Compact (issue #20): the records are ``msgspec`` structs without a GC header, low-cardinality
strings (sources, nodes, regions, devices, reasons, facts) are interned, stage times are one
packed ``bytes`` per SKU, and no JSON memo is kept on a state: a memoised ``orjson.dumps``
result pins a 4 KiB buffer (orjson does not shrink it), which was most of 17.6 KB per SKU.
A SKU's timeline is one packed ``bytes`` (:mod:`stream.timeline_pack`: ~45 B per event
instead of ~210 B as structs and strings), its stage times sparse (status, time) pairs, and
orders without stage state share one empty extensions mapping.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar, dataclass_transform

import msgspec

from stream import timeline_pack
from stream.contract import CLOSED, STAGE_RANK, TERMINAL, OrderEvent, SkuClass, Status, is_legal
from stream.timeline_pack import TimelineEntry as TimelineEntry

#: Events kept per SKU (newest by event time); older ones are folded into ``base``.
TIMELINE_LIMIT = 32

#: Rank before any event; ``exception`` alone keeps it.
NO_RANK = STAGE_RANK[Status.EXCEPTION]

_intern = sys.intern


def interned(value: str | None) -> str | None:
    """One shared copy of a low-cardinality string (source, node, region, reason...)."""
    return None if value is None else _intern(value)


#: The extensions of an order no stage keeps state for (shared: an empty dict is 64 B per order).
NO_EXTENSIONS: Mapping[str, Any] = MappingProxyType({})

_C = TypeVar("_C")


@dataclass_transform(frozen_default=True)
def state_record(cls: type[_C]) -> type[_C]:
    """A slotted dataclass that is immutable by contract: type checkers see it frozen
    (``dataclass_transform(frozen_default=True)``), but at run time it is not, because a
    frozen dataclass sets every field through ``object.__setattr__`` and is about five times
    slower to construct. These records are built several times per event on the hot path."""
    return dataclass(slots=True)(cls)


#: Status values by member (``Status.X.value`` is a property call; this is a dict lookup).
_V: dict[Status, str] = {s: s.value for s in Status}


class Progress(NamedTuple):
    """Where a fold of a timeline stands: status, interrupted status, highest rank."""

    status: Status | None = None
    #: When ``status`` is ``exception``: the status it interrupted (``None``: unknown).
    interrupted: Status | None = None
    rank: int = NO_RANK


START = Progress()


#: The happy path of a SKU: the stages a forward skip is measured against. ``hub_arrival``
#: stands level with ``linehaul`` (either is an in-transit scan), ``backordered`` and
#: ``delivery_failed`` are detours beside it.
LADDER: tuple[Status, ...] = (
    Status.PAID,
    Status.PICKED,
    Status.PACKED,
    Status.OUTBOUND_SCAN,
    Status.LINEHAUL,
    Status.OUT_FOR_DELIVERY,
    Status.DELIVERED,
    Status.RETURN_REQUESTED,
    Status.RETURNED,
)

#: Position on the ladder of every status that has one (detours sit between two stages).
_POSITION: dict[Status, float] = {
    **{s: float(i) for i, s in enumerate(LADDER)},
    Status.BACKORDERED: 0.5,
    Status.HUB_ARRIVAL: float(LADDER.index(Status.LINEHAUL)),
    Status.DELIVERY_FAILED: LADDER.index(Status.OUT_FOR_DELIVERY) + 0.5,
}

#: Nothing follows these (``delivered`` may still be followed by a return).
_FINAL = frozenset({Status.CANCELLED, Status.RETURNED})
_RETURNS = frozenset({Status.RETURN_REQUESTED, Status.RETURNED})


def forward(current: Status, new: Status) -> bool:
    """Whether ``new`` lies further along the ladder than ``current`` (a possibly skipping,
    never regressing move); ``cancelled`` and ``exception`` are not ladder moves."""
    if current in _FINAL:
        return False
    here, there = _POSITION.get(current), _POSITION.get(new)
    return here is not None and there is not None and there > here


def skipped_stages(current: Status | None, new: Status) -> tuple[Status, ...]:
    """The ladder stages between ``current`` and ``new`` that were not scanned (a forward
    move; ``()`` for the first event, loops, detours back and non-ladder statuses)."""
    if current is None:
        return ()
    here, there = _POSITION.get(current), _POSITION.get(new)
    if here is None or there is None or there <= here:
        return ()
    if new in _RETURNS and here < _POSITION[Status.DELIVERED]:
        # Sent back before delivery (refused, intercepted): no delivery stage is implied.
        return (Status.RETURN_REQUESTED,) if new is Status.RETURNED else ()
    return tuple(s for s in LADDER if here < _POSITION[s] < there)


def skipped_by(progress: Progress, status: Status) -> tuple[Status, ...]:
    """:func:`skipped_stages` of a legal step from ``progress`` (after an exception: from
    the status it interrupted)."""
    if status is Status.EXCEPTION:
        return ()
    current = progress.interrupted if progress.status is Status.EXCEPTION else progress.status
    return skipped_stages(current, status)


def step(progress: Progress, status: Status) -> Progress | str:
    """Apply one status to a fold; return the next progress or why it is illegal."""
    current = progress.status
    if current is None:
        if status is Status.EXCEPTION:
            return Progress(status, None, progress.rank)
        return Progress(status, None, max(progress.rank, STAGE_RANK[status]))
    if status is Status.EXCEPTION:
        if current in TERMINAL:
            return f"exception after terminal status {current.value}"
        interrupted = progress.interrupted if current is Status.EXCEPTION else current
        return Progress(status, interrupted, progress.rank)
    if current is Status.EXCEPTION:
        resumed = progress.interrupted
        if (
            resumed is not None
            and status is not resumed
            and not is_legal(resumed, status)
            and not forward(resumed, status)
        ):
            return f"{status.value} cannot resume after an exception that interrupted {resumed.value}"
    elif not is_legal(current, status) and not forward(current, status):
        return f"{current.value} -> {status.value} is not a legal transition"
    return Progress(status, None, max(progress.rank, STAGE_RANK[status]))


class Position(msgspec.Struct, frozen=True, gc=False, array_like=True):
    lat: float
    lon: float
    time_ns: int


class SkuFacts(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """Descriptive fields of a SKU line, from its newest event that carried each one."""

    qty: int = 1
    region: str | None = None
    warehouse: str | None = None
    carrier: str | None = None
    channel: str | None = None
    node: str | None = None
    promised_by_ns: int | None = None
    dest_lat: float | None = None
    dest_lon: float | None = None
    sku_class: str | None = None
    vip: bool = False


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_ns(value: datetime) -> int:
    """An aware datetime as integer nanoseconds since the epoch (exact, no float rounding)."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def ns_datetime(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


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


def shared_facts(facts: SkuFacts, like: SkuFacts | None) -> SkuFacts:
    """``facts`` sharing ``like``'s objects where equal (the SKU's previous facts, or a sibling
    line's: lines of an order mostly share promise and destination): ``like`` itself when all
    are equal, else its promised time and destination numbers (48 and 2 x 32 B per SKU)."""
    if like is None:
        return facts
    if facts == like:
        return like
    promised = like.promised_by_ns if facts.promised_by_ns == like.promised_by_ns else facts.promised_by_ns
    lat = like.dest_lat if facts.dest_lat == like.dest_lat else facts.dest_lat
    lon = like.dest_lon if facts.dest_lon == like.dest_lon else facts.dest_lon
    if promised is facts.promised_by_ns and lat is facts.dest_lat and lon is facts.dest_lon:
        return facts
    return msgspec.structs.replace(facts, promised_by_ns=promised, dest_lat=lat, dest_lon=lon)


# -- stage times: (status slot u8, int64 ns) pairs of the statuses reached, packed ----------

_STATUSES: tuple[Status, ...] = tuple(Status)
_SLOT: dict[str, int] = {s.value: i for i, s in enumerate(_STATUSES)}
_PAIR = struct.Struct("<Bq")
_TIME = struct.Struct("<q")
NO_STAGE_TIMES = b""


def sku_times(status_time_ns: int, stage_ns: bytes) -> bytes:
    """:attr:`SkuState.times` of a status time and packed stage times."""
    return _TIME.pack(status_time_ns) + stage_ns


def pack_stage_times(times: Mapping[str, int]) -> bytes:
    """Canonical: pairs in slot order, so equal stage times are equal bytes."""
    return b"".join([_PAIR.pack(slot, int(ns)) for slot, ns in sorted((_SLOT[s], ns) for s, ns in times.items()) if ns])


def unpack_stage_times(packed: bytes) -> dict[str, int]:
    """Status value -> first time reached, in the order reached (ties: ladder order)."""
    found = sorted((ns, i) for i, ns in _PAIR.iter_unpack(packed))
    return {_STATUSES[i].value: ns for ns, i in found}


def _with_stage_time(packed: bytes, status: str, ns: int) -> bytes:
    """``packed`` with ``status`` reached at ``ns`` unless it was reached earlier."""
    slot = _SLOT[status]
    size = _PAIR.size
    for offset in range(0, len(packed), size):
        here = packed[offset]
        if here == slot:
            if _PAIR.unpack_from(packed, offset)[1] <= ns:
                return packed
            return packed[:offset] + _PAIR.pack(slot, ns) + packed[offset + size :]
        if here > slot:
            return packed[:offset] + _PAIR.pack(slot, ns) + packed[offset:]
    return packed + _PAIR.pack(slot, ns)


class SkuState(msgspec.Struct, frozen=True, gc=False):
    """The state of one SKU line of an order."""

    sku: str
    status: Status
    #: When ``status`` is ``exception``: the status it interrupted.
    interrupted: Status | None
    #: Highest progress rank reached; never decreases.
    rank: int
    #: The event time of the event that set ``status`` (int64), then the first event time at
    #: which each status was reached as (slot, int64) pairs: read :attr:`status_time_ns` and
    #: :attr:`stage_times` (one object: an int costs 48 B).
    times: bytes
    position: Position | None
    facts: SkuFacts
    #: Newest events, oldest first, ordered by (event time, event_id), packed with their
    #: duplicate window (:mod:`stream.timeline_pack`; read :attr:`timeline`).
    packed: bytes
    #: The fold just before the oldest kept timeline entry.
    base: Progress = START
    #: Held by the no-regression rule: ``status`` differs from the fold of the timeline.
    pinned: bool = False

    @property
    def status_time_ns(self) -> int:
        """Event time of the event that set ``status``."""
        return int(_TIME.unpack_from(self.times)[0])

    @property
    def stage_ns(self) -> bytes:
        """The stage times, packed (see :func:`pack_stage_times`)."""
        return self.times[8:]

    @property
    def stage_times(self) -> dict[str, int]:
        """First event time at which each status was reached (status value -> ns), in order."""
        return unpack_stage_times(self.times[8:])

    @property
    def timeline(self) -> tuple[TimelineEntry, ...]:
        """Newest events, oldest first, ordered by (event time, event_id) (unpacked on each call)."""
        return timeline_pack.unpack(self.packed)

    @property
    def event_ids(self) -> frozenset[str]:
        """Ids of the timeline's events (the dedup window)."""
        return frozenset(e.event_id for e in self.timeline)

    @property
    def progress(self) -> Progress:
        return Progress(self.status, self.interrupted, self.rank)

    @property
    def effective_rank(self) -> int:
        """The rank of the current status (``exception``: of the status it interrupted)."""
        if self.status is Status.EXCEPTION:
            return STAGE_RANK[self.interrupted] if self.interrupted is not None else self.rank
        return STAGE_RANK[self.status]

    @property
    def closed(self) -> bool:
        return self.status in CLOSED

    @property
    def newest_ns(self) -> int:
        newest = timeline_pack.newest_time(self.packed)
        return self.status_time_ns if newest is None else newest

    def has_event(self, event_id: str) -> bool:
        """Whether ``event_id`` is in the duplicate window (exact: see :mod:`stream.timeline_pack`)."""
        return timeline_pack.contains(self.packed, event_id)

    @property
    def not_scanned(self) -> tuple[Status, ...]:
        """Ladder stages the applied timeline skipped (missing scans), in ladder order."""
        found = {s for e in self.timeline if e.skipped for s in e.skipped}
        return tuple(s for s in LADDER if s in found)


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


class SkuLines(Mapping[str, SkuState]):
    """An order's SKU states by SKU id, as one tuple: a read-only mapping of 1-3 lines costs
    ~100 B instead of a dict's ~190 B (issue #20). Lookups scan the lines (orders have few)."""

    __slots__ = ("_lines",)

    def __init__(self, lines: Iterable[SkuState] = ()) -> None:
        self._lines: tuple[SkuState, ...] = tuple(lines)

    @classmethod
    def with_line(cls, skus: Mapping[str, SkuState], line: SkuState) -> SkuLines:
        """``skus`` with ``line`` added or replacing the line of its SKU id."""
        lines = skus._lines if isinstance(skus, SkuLines) else tuple(skus.values())
        for i, old in enumerate(lines):
            if old.sku == line.sku:
                return cls(lines[:i] + (line,) + lines[i + 1 :])
        return cls(lines + (line,))

    def __getitem__(self, key: str) -> SkuState:
        for line in self._lines:
            if line.sku == key:
                return line
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        for line in self._lines:
            if line.sku == key:
                return line
        return default

    def __contains__(self, key: object) -> bool:
        return any(line.sku == key for line in self._lines)

    def __iter__(self) -> Iterator[str]:
        return (line.sku for line in self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def values(self) -> tuple[SkuState, ...]:  # type: ignore[override]
        return self._lines

    def items(self) -> list[tuple[str, SkuState]]:  # type: ignore[override]
        return [(line.sku, line) for line in self._lines]

    def __repr__(self) -> str:
        return f"SkuLines({dict(self.items())!r})"


@state_record
class OrderState:
    """Everything the worker keeps about one order."""

    order_id: str
    #: Source partition of the order (all its events share it); the changelog partition.
    partition: int
    skus: Mapping[str, SkuState]
    #: Newest event time of the order.
    last_event_ns: int
    #: Number of ``order-updates`` messages published for the order.
    seq: int = 0
    #: Per-stage state of pipeline stages (JSON-serialisable), keyed by stage name.
    extensions: Mapping[str, Any] = field(default_factory=lambda: NO_EXTENSIONS)

    @property
    def closed(self) -> bool:
        return bool(self.skus) and all(s.closed for s in self.skus.values())

    def has_event(self, event_id: str) -> bool:
        return any(s.has_event(event_id) for s in self.skus.values())

    def with_extension(self, name: str, value: Any) -> OrderState:
        extensions = dict(self.extensions)
        if value is None:
            extensions.pop(name, None)
        else:
            extensions[name] = value
        return replace(self, extensions=extensions)


def new_order(order_id: str, partition: int) -> OrderState:
    return OrderState(order_id=order_id, partition=partition, skus={}, last_event_ns=0)


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
        old = _with_stage_time(old, key, value)
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
        times=sku_times(time_ns, _with_stage_time(NO_STAGE_TIMES, _V[event.status], time_ns)),
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
        stage_ns = _with_stage_time(sku.stage_ns, _V[event.status], time_ns)
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


def expired(order: OrderState, watermark_ns: int, closed_retention_ns: int, open_retention_ns: int) -> bool:
    """Whether an order may be forgotten: closed and quiet for ``closed_retention_ns``, or
    open (abandoned) and quiet for ``open_retention_ns``, measured in event time against
    the partition's watermark (its newest event time)."""
    quiet = watermark_ns - order.last_event_ns
    return quiet > (closed_retention_ns if order.closed else open_retention_ns)
