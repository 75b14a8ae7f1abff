"""The per-order state the worker keeps, and its compact encodings (pure records).

An :class:`OrderState` is what the worker keeps per order in its Faust table: one
:class:`SkuState` per SKU line, the order-updates ``seq`` and the SKUs' bounded timelines,
whose event ids are also the dedup state. ``stream.core.lifecycle`` computes the next state from
an event; this module only holds the records.

Compact (issue #20): the records are ``msgspec`` structs without a GC header, low-cardinality
strings (sources, nodes, regions, devices, reasons, facts) are interned, stage times are one
packed ``bytes`` per SKU, and no JSON memo is kept on a state: a memoised ``orjson.dumps``
result pins a 4 KiB buffer (orjson does not shrink it), which was most of 17.6 KB per SKU.
A SKU's timeline is one packed ``bytes`` (:mod:`stream.core.timeline_pack`: ~45 B per event
instead of ~210 B as structs and strings), its stage times sparse (status, time) pairs, and
orders without stage state share one empty extensions mapping.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeVar, dataclass_transform

import msgspec

from stream.contract import CLOSED, STAGE_RANK, Status
from stream.core import timeline_pack
from stream.core.progress import LADDER, START, Progress
from stream.core.timeline_pack import TimelineEntry

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


def with_stage_time(packed: bytes, status: str, ns: int) -> bytes:
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
    #: duplicate window (:mod:`stream.core.timeline_pack`; read :attr:`timeline`).
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
        """Whether ``event_id`` is in the duplicate window (exact: see :mod:`stream.core.timeline_pack`)."""
        return timeline_pack.contains(self.packed, event_id)

    @property
    def not_scanned(self) -> tuple[Status, ...]:
        """Ladder stages the applied timeline skipped (missing scans), in ladder order."""
        found = {s for e in self.timeline if e.skipped for s in e.skipped}
        return tuple(s for s in LADDER if s in found)


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


def expired(order: OrderState, watermark_ns: int, closed_retention_ns: int, open_retention_ns: int) -> bool:
    """Whether an order may be forgotten: closed and quiet for ``closed_retention_ns``, or
    open (abandoned) and quiet for ``open_retention_ns``, measured in event time against
    the partition's watermark (its newest event time)."""
    quiet = watermark_ns - order.last_event_ns
    return quiet > (closed_retention_ns if order.closed else open_retention_ns)
