"""Retention of the worker's hot state, in event time (issue #20).

A finished (closed) order leaves the table ``closed`` after its newest event; an open order
stays until it finishes, or until it has been quiet for ``abandoned_after``: then it is
forgotten too and reported as a data-quality finding (``abandoned_order``,
:func:`stream.core.data_quality.abandoned_findings`), since an order nobody scans for that long
is lost data, not a parcel in transit. Both are measured against the partition's event-time
watermark (its newest event), never the wall clock, so a replay or a backlog ages its orders
as they aged then. Forgotten orders are tombstoned in the changelog.

:class:`RetentionIndex` finds the orders due without scanning the table: orders are kept in
hourly buckets of their newest event time, per clock (partition, replay). A sweep looks only
at buckets older than the closed horizon; an order still open there moves to the same hour's
open bucket, looked at again only past the abandonment horizon. Each order is looked at a
bounded number of times per update, whatever the table's size.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, model_validator

from config.durations import Duration
from stream.core.order_state import OrderState, expired

HOUR_NS = 3600 * 10**9

#: A clock of the worker: (source partition, replay id or ``None`` for live traffic).
Clock = tuple[int, str | None]


class RetentionSettings(BaseModel):
    """``ORDERRADAR_RETENTION_CLOSED`` and ``ORDERRADAR_RETENTION_ABANDONED_AFTER``
    (durations such as ``36h`` or ``30d``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A closed order (every line delivered, cancelled or returned) is kept this long after
    #: its newest event: duplicates and late scans of it are still recognised meanwhile.
    closed: Duration = timedelta(days=1)
    #: An open order quiet this long is abandoned: forgotten, and a data-quality finding.
    abandoned_after: Duration = timedelta(days=30)

    @model_validator(mode="after")
    def _sane(self) -> RetentionSettings:
        if self.closed < timedelta(minutes=1):
            raise ValueError(f"retention closed={self.closed} must be at least 1 minute")
        if self.abandoned_after <= self.closed:
            raise ValueError(
                f"retention abandoned_after={self.abandoned_after} must be longer than closed={self.closed}"
            )
        return self


class RetentionIndex:
    """Order ids by clock and hour of their newest event time (see the module doc)."""

    def __init__(self) -> None:
        # clock -> hour -> order ids; "recent" holds orders not yet looked at, "open" those
        # found open past the closed horizon.
        self._recent: dict[Clock, dict[int, set[str]]] = {}
        self._open: dict[Clock, dict[int, set[str]]] = {}
        self._where: dict[str, tuple[Clock, int, bool]] = {}
        #: One shared (clock, hour, open) tuple per bucket: an order costs a dict and a set slot.
        self._shared: dict[tuple[Clock, int, bool], tuple[Clock, int, bool]] = {}

    def _place(self, order_id: str, clock: Clock, hour: int, is_open: bool) -> None:
        where = (clock, hour, is_open)
        self._where[order_id] = self._shared.setdefault(where, where)
        (self._open if is_open else self._recent).setdefault(clock, {}).setdefault(hour, set()).add(order_id)

    def __len__(self) -> int:
        return len(self._where)

    def note(self, order_id: str, clock: Clock, last_event_ns: int) -> None:
        """The order's newest event time is ``last_event_ns`` (it was stored or recovered)."""
        hour = last_event_ns // HOUR_NS
        where = self._where.get(order_id)
        if where is not None:
            if where[0] == clock and where[1] == hour and not where[2]:
                return
            self._remove(order_id, where)
        self._place(order_id, clock, hour, False)

    def discard(self, order_id: str) -> None:
        where = self._where.pop(order_id, None)
        if where is not None:
            self._remove(order_id, where, forget=False)

    def _remove(self, order_id: str, where: tuple[Clock, int, bool], forget: bool = True) -> None:
        clock, hour, is_open = where
        buckets = (self._open if is_open else self._recent)[clock]
        bucket = buckets[hour]
        bucket.discard(order_id)
        if not bucket:
            del buckets[hour]
        if forget:
            self._where.pop(order_id, None)

    def mark_open(self, order_id: str) -> None:
        """The order was looked at past the closed horizon and is still open."""
        where = self._where.get(order_id)
        if where is None or where[2]:
            return
        self._remove(order_id, where)
        self._place(order_id, where[0], where[1], True)

    def candidates(self, clock: Clock, watermark_ns: int, closed_ns: int, abandoned_ns: int) -> Iterator[str]:
        """Orders that may be due: not yet looked at and older than the closed horizon, or
        found open and older than the abandonment horizon (whole hours: the caller decides
        exactly)."""
        for buckets, horizon in ((self._recent.get(clock), closed_ns), (self._open.get(clock), abandoned_ns)):
            if not buckets:
                continue
            # an hour whose end is before the horizon holds only orders quiet long enough
            limit = (watermark_ns - horizon) // HOUR_NS
            for hour in sorted(h for h in buckets if h <= limit):
                yield from list(buckets.get(hour, ()))

    def clocks(self) -> list[Clock]:
        return sorted(set(self._recent) | set(self._open), key=lambda c: (c[0], c[1] or ""))


@dataclass(frozen=True, slots=True)
class Forgotten:
    """An order a sweep found due: tombstone it; ``abandoned``: it was still open."""

    order_id: str
    order: OrderState
    partition: int
    watermark_ns: int
    abandoned: bool


def sweep(
    store: Mapping[str, object],
    index: RetentionIndex,
    watermarks: Mapping[Clock, int],
    partitions: Container[int],
    closed_ns: int,
    abandoned_ns: int,
    busy: Container[str] = (),
) -> list[Forgotten]:
    """The orders of ``partitions`` due for forgetting (the caller removes them from the
    store and the index); ``busy``: orders changed meanwhile, left for the next sweep."""
    out: list[Forgotten] = []
    for clock in index.clocks():
        if clock[0] not in partitions:
            continue
        watermark = watermarks.get(clock, 0)
        for key in index.candidates(clock, watermark, closed_ns, abandoned_ns):
            value = store.get(key)
            if not isinstance(value, OrderState):
                index.discard(key)
                continue
            if key in busy:
                continue
            if expired(value, watermark, closed_ns, abandoned_ns):
                out.append(Forgotten(key, value, clock[0], watermark, not value.closed))
            elif not value.closed and watermark - value.last_event_ns > closed_ns:
                index.mark_open(key)
    return out


__all__ = ["HOUR_NS", "Clock", "Forgotten", "RetentionIndex", "RetentionSettings", "sweep"]
