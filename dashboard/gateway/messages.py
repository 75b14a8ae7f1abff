"""The messages the gateway sends on its WebSockets, and how two of them coalesce.

Every message is a JSON object with ``type`` and ``seq``. A message is serialised once
(:meth:`Outgoing.text` is cached) however many connections it goes to. When a newer
message meets an unsent one with the same ``key`` in a connection's outbox, the two are
merged (:meth:`Outgoing.merged_with`) so a lagging client gets the latest state, never a
backlog:

* ``/ws/track`` (``key`` = the order): snapshot + delta -> snapshot; delta + delta ->
  one delta spanning both (``from_seq`` of the first, ``seq`` of the second).
* ``/ws/warroom`` (``key`` = channel and item): the newer update replaces the older.

Formats are documented in detail in :mod:`dashboard.gateway.ws_track` and
:mod:`dashboard.gateway.ws_warroom`. Pure.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import orjson

from dashboard.gateway.projection import OrderView, sku_changes


class Outgoing:
    """One message for one or many connections."""

    key: Hashable
    seq: int

    def __init__(self) -> None:
        self._text: str | None = None

    def payload(self) -> dict[str, Any]:
        raise NotImplementedError

    def text(self) -> str:
        if self._text is None:
            self._text = orjson.dumps(self.payload()).decode()
        return self._text

    def merged_with(self, newer: Outgoing) -> Outgoing:
        """The one message that replaces ``self`` followed by ``newer`` (same key)."""
        return newer


def _fragments(skus: Mapping[str, bytes]) -> dict[str, orjson.Fragment]:
    return {sku: orjson.Fragment(data) for sku, data in skus.items()}


class TrackSnapshot(Outgoing):
    def __init__(self, order_id: str, seq: int, view: OrderView) -> None:
        super().__init__()
        self.order_id = order_id
        self.seq = seq
        self.view = view
        self.key = ("order", order_id)

    def payload(self) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "order_id": self.order_id,
            "seq": self.seq,
            **self.view.header,
            "skus": _fragments(self.view.skus),
        }

    def merged_with(self, newer: Outgoing) -> Outgoing:
        if isinstance(newer, TrackDelta):
            assert newer.from_seq == self.seq, "a delta must continue the state it is merged into"
            return TrackSnapshot(self.order_id, newer.seq, apply_delta(self.view, newer))
        return newer


class TrackDelta(Outgoing):
    def __init__(
        self,
        order_id: str,
        from_seq: int,
        seq: int,
        header: Mapping[str, Any],
        skus: Mapping[str, bytes],
        removed: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.order_id = order_id
        self.from_seq = from_seq
        self.seq = seq
        self.header = dict(header)
        self.skus = dict(skus)
        self.removed = removed
        self.key = ("order", order_id)

    def payload(self) -> dict[str, Any]:
        return {
            "type": "delta",
            "order_id": self.order_id,
            "from_seq": self.from_seq,
            "seq": self.seq,
            **self.header,
            "skus": _fragments(self.skus),
            "removed": list(self.removed),
        }

    def merged_with(self, newer: Outgoing) -> Outgoing:
        if isinstance(newer, TrackDelta):
            assert newer.from_seq == self.seq, "deltas merge only when they chain"
            skus = _patched(self.skus, newer.skus, newer.removed)
            removed = (set(self.removed) - newer.skus.keys()) | set(newer.removed)
            return TrackDelta(self.order_id, self.from_seq, newer.seq, newer.header, skus, tuple(sorted(removed)))
        return newer


def _patched(skus: Mapping[str, bytes], changed: Mapping[str, bytes], removed: tuple[str, ...]) -> dict[str, bytes]:
    """``skus`` without the ``removed`` ones, with the ``changed`` ones set."""
    return {**{sku: v for sku, v in skus.items() if sku not in removed}, **changed}


def apply_delta(view: OrderView, delta: TrackDelta) -> OrderView:
    """The customer view after ``delta`` (what a browser does with a delta, too)."""
    return OrderView(dict(delta.header), _patched(view.skus, delta.skus, delta.removed))


def delta_between(order_id: str, from_seq: int, seq: int, old: OrderView, new: OrderView) -> TrackDelta:
    changed, removed = sku_changes(old, new)
    return TrackDelta(order_id, from_seq, seq, new.header, changed, removed)


class Notice(Outgoing):
    """A small control message (``subscribed``, ``pong``); the latest of a kind wins."""

    def __init__(self, kind: str, seq: int, **fields: Any) -> None:
        super().__init__()
        self.kind = kind
        self.seq = seq
        self.fields = fields
        self.key = ("notice", kind)

    def payload(self) -> dict[str, Any]:
        return {"type": self.kind, "seq": self.seq, **self.fields}


def error_message(status: int, error: str, detail: str, seq: int = 0) -> str:
    """An error sent just before the server closes the connection."""
    return orjson.dumps({"type": "error", "seq": seq, "status": status, "error": error, "detail": detail}).decode()


class WarroomUpdate(Outgoing):
    def __init__(self, epoch: str, seq: int, channel: str, item_key: str, data: Any) -> None:
        super().__init__()
        self.epoch = epoch
        self.seq = seq
        self.channel = channel
        self.item_key = item_key
        self.data = data
        self.key = (channel, item_key)

    def payload(self) -> dict[str, Any]:
        return {
            "type": "update",
            "epoch": self.epoch,
            "seq": self.seq,
            "channel": self.channel,
            "key": self.item_key,
            "data": self.data,
        }


class WarroomSnapshot(Outgoing):
    def __init__(self, epoch: str, seq: int, channels: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__()
        self.epoch = epoch
        self.seq = seq
        self.channels = channels
        self.key = ("snapshot",)

    def payload(self) -> dict[str, Any]:
        return {"type": "snapshot", "epoch": self.epoch, "seq": self.seq, "channels": self.channels}
