"""The latest snapshot of recently changed orders, plus each order's recent deltas. Pure.

Bounded twice: at most ``max_orders`` orders (least recently updated or viewed are evicted
first) and at most ``deltas_per_order`` deltas each. Deltas are what a reconnecting
customer replays (``deltas_since``); when they are gone the customer gets a snapshot.

Seqs come from the worker (per order, monotonic). Records are at-least-once, so a seq at
or below the cached one is a duplicate and ignored.

The cache is also what the web tier knows of which orders exist and which sources sent
events for them (:meth:`CachedOrder.sources`, read from the snapshot's timelines only when
asked, so the update path pays nothing for it). Every instance reads all of
``order-updates``, so all instances agree, whichever one received the events.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

import orjson

from dashboard.gateway.messages import TrackDelta, TrackSnapshot, delta_between
from dashboard.gateway.order_snapshot import OrderSnapshot
from dashboard.gateway.projection import OrderView, order_view


@dataclass
class CachedOrder:
    order_id: str
    seq: int
    #: The record as the worker published it (staff API answers with it unchanged).
    raw: bytes
    view: OrderView
    deltas: deque[TrackDelta] = field(default_factory=deque)

    def snapshot(self) -> TrackSnapshot:
        return TrackSnapshot(self.order_id, self.seq, self.view)

    def sources(self) -> frozenset[str]:
        """The sources of the events in the snapshot's timelines (the worker keeps each
        SKU's newest entries, so a source whose events all scrolled out is not listed)."""
        obj = orjson.loads(self.raw)
        skus = obj.get("skus") if isinstance(obj, dict) else None
        found: set[str] = set()
        for sku in skus.values() if isinstance(skus, dict) else ():
            timeline = sku.get("timeline") if isinstance(sku, dict) else None
            for entry in timeline if isinstance(timeline, list) else ():
                source = entry.get("source") if isinstance(entry, dict) else None
                if isinstance(source, str):
                    found.add(source)
        return frozenset(found)


@dataclass(frozen=True)
class OrderChange:
    """What one accepted update means for watchers: the new snapshot, and the delta from
    the previous cached state when there was one."""

    order_id: str
    seq: int
    snapshot: TrackSnapshot
    delta: TrackDelta | None


class OrderCache:
    def __init__(self, max_orders: int, deltas_per_order: int) -> None:
        self.max_orders = max_orders
        self.deltas_per_order = deltas_per_order
        self._orders: OrderedDict[str, CachedOrder] = OrderedDict()
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._orders)

    def get(self, order_id: str) -> CachedOrder | None:
        entry = self._orders.get(order_id)
        if entry is not None:
            self._orders.move_to_end(order_id)
        return entry

    def apply(self, snapshot: OrderSnapshot, raw: bytes) -> OrderChange | None:
        """Take one ``order-updates`` record; ``None`` when it is stale or a duplicate."""
        entry = self._orders.get(snapshot.order_id)
        if entry is not None and snapshot.seq <= entry.seq:
            return None
        view = order_view(snapshot)
        delta = None
        if entry is None:
            entry = CachedOrder(snapshot.order_id, snapshot.seq, raw, view, deque(maxlen=self.deltas_per_order))
            self._orders[snapshot.order_id] = entry
            if len(self._orders) > self.max_orders:
                self._orders.popitem(last=False)
                self.evictions += 1
        else:
            delta = delta_between(snapshot.order_id, entry.seq, snapshot.seq, entry.view, view)
            entry.deltas.append(delta)
            entry.seq, entry.raw, entry.view = snapshot.seq, raw, view
            self._orders.move_to_end(snapshot.order_id)
        return OrderChange(snapshot.order_id, snapshot.seq, entry.snapshot(), delta)

    def deltas_since(self, order_id: str, last_seq: int) -> list[TrackDelta] | None:
        """The deltas taking a client from ``last_seq`` to the current seq, in order;
        ``[]`` when it is current, ``None`` when the buffer no longer reaches back."""
        entry = self._orders.get(order_id)
        if entry is None:
            return None
        if last_seq == entry.seq:
            return []
        deltas = list(entry.deltas)
        for index, delta in enumerate(deltas):
            if delta.from_seq == last_seq:
                return deltas[index:]
        return None
