"""A connection's bounded, coalescing queue of unsent messages.

At most ``max_keys`` distinct keys wait at once. A message whose key is already waiting
is merged into it (latest state wins) and moves to the back, so the queue is always in
``seq`` order and never holds two messages for one order or cell. A put that would need
one key more than the bound reports ``OVERFLOW``: the client is too slow and is
disconnected by its owner. ``put`` never blocks, so broadcasting never waits for a client.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum

from dashboard.gateway.messages import Outgoing


class PutResult(Enum):
    QUEUED = "queued"
    COALESCED = "coalesced"
    OVERFLOW = "overflow"


@dataclass
class _Entry:
    message: Outgoing
    #: When the oldest information in this entry was queued (merges keep the first time).
    since: float


class SendQueue:
    def __init__(self, max_keys: int) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.max_keys = max_keys
        self._pending: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, message: Outgoing, now: float) -> PutResult:
        waiting = self._pending.pop(message.key, None)
        if waiting is not None:
            self._pending[message.key] = _Entry(waiting.message.merged_with(message), waiting.since)
            return PutResult.COALESCED
        if len(self._pending) >= self.max_keys:
            return PutResult.OVERFLOW
        self._pending[message.key] = _Entry(message, now)
        self._ready.set()
        return PutResult.QUEUED

    async def get(self) -> Outgoing:
        while not self._pending:
            self._ready.clear()
            await self._ready.wait()
        _, entry = self._pending.popitem(last=False)
        return entry.message

    def oldest_since(self) -> float | None:
        """Queue time of the message at the head (the one the writer sends next)."""
        for entry in self._pending.values():
            return entry.since
        return None
