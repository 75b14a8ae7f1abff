"""What the war-room shows, as items per channel, with a global seq and recent history. Pure.

Channels: ``kpis`` and ``heatmap`` (and any other ``type`` the worker puts on
``warroom-updates``), ``incident``, ``alert``, ``silence``, ``disruption``. Each item is the
latest JSON object for its key; ``None`` removes it. Every change gets the next ``seq`` of
this instance and is kept in a bounded history, so a reconnecting war-room client with the
same ``epoch`` (this instance's run) replays what it missed, else it gets a snapshot.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import Any

from dashboard.gateway.messages import WarroomSnapshot, WarroomUpdate


def item_of_warroom_record(record_key: bytes | None, obj: Mapping[str, Any]) -> tuple[str, str]:
    """Channel and key of one ``warroom-updates`` record.

    The worker sends ``{"type": "kpis" | "heatmap" | ..., "key": <item>, ...}``; the key
    falls back to ``cell``/``id``, then the record key, then the channel itself.
    """
    channel = obj.get("type") or obj.get("kind") or "warroom"
    key = obj.get("key") or obj.get("cell") or obj.get("id")
    if key is None and record_key:
        key = record_key.decode("utf-8", "replace")
    return str(channel)[:64], str(key if key is not None else channel)[:256]


class WarroomState:
    def __init__(self, history: int, items_per_channel: int, epoch: str | None = None) -> None:
        self.epoch = epoch or uuid.uuid4().hex[:12]
        self.seq = 0
        self.items_per_channel = items_per_channel
        self._channels: dict[str, OrderedDict[str, Any]] = {}
        self._history: deque[WarroomUpdate] = deque(maxlen=history)

    def apply(self, channel: str, key: str, data: Any) -> WarroomUpdate:
        items = self._channels.setdefault(channel, OrderedDict())
        if data is None:
            items.pop(key, None)
        else:
            items.pop(key, None)
            items[key] = data
            if len(items) > self.items_per_channel:
                items.popitem(last=False)
        self.seq += 1
        update = WarroomUpdate(self.epoch, self.seq, channel, key, data)
        self._history.append(update)
        return update

    def items(self, channel: str) -> list[Any]:
        return list(self._channels.get(channel, {}).values())

    def get(self, channel: str, key: str) -> Any:
        items = self._channels.get(channel)
        return items.get(key) if items is not None else None

    def snapshot(self) -> WarroomSnapshot:
        return WarroomSnapshot(self.epoch, self.seq, {name: dict(items) for name, items in self._channels.items()})

    def since(self, epoch: str | None, last_seq: int | None) -> list[WarroomUpdate] | None:
        """Updates after ``last_seq`` of this epoch, or ``None`` when a snapshot is needed."""
        if epoch != self.epoch or last_seq is None or last_seq > self.seq:
            return None
        if last_seq == self.seq:
            return []
        if not self._history or self._history[0].seq > last_seq + 1:
            return None
        return [u for u in self._history if u.seq > last_seq]
