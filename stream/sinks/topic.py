"""The topic sink: a batch's messages (dead letters, order updates, war-room updates, stage
messages) through the pipeline's producer (:class:`stream.sinks.outbox.Outbox`), and their
encoders.

Each message carries the source partition it derives from: a revoked partition's messages
are dropped with the batch's other outputs for it (its new owner replays them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import orjson

from stream.core.aggregates import PartitionAggregates
from stream.core.dlq import DeadLetter
from stream.core.dlq import encode as encode_dead_letter
from stream.core.order_state import OrderState
from stream.core.rollup import order_snapshot
from stream.sinks.outbox import Outbox, OutRecord
from stream.sinks.sink import Fence

#: A message and the source partition it derives from (``None``: none in particular).
Message = tuple[OutRecord, int | None]


class TopicSink:
    """Messages to topics, within the batch's fence."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def write(self, items: Sequence[Message], fence: Fence) -> None:
        await self.outbox.send(fence.keep(items))


def dead_letter_messages(
    topic: str, letters: Iterable[tuple[int, bytes | None, DeadLetter]], partitions: int
) -> list[Message]:
    """Dead letters (source partition, record key, envelope), each to the partition of its
    source's number modulo the topic's ``partitions``."""
    return [
        (OutRecord(topic, encode_dead_letter(letter), key, source % partitions), source)
        for source, key, letter in letters
    ]


def order_update_messages(topic: str, orders: Iterable[OrderState]) -> list[Message]:
    """An ``order-updates`` message per order: its snapshot, keyed by order id."""
    return [
        (OutRecord(topic, orjson.dumps(order_snapshot(order)), order.order_id.encode()), order.partition)
        for order in orders
    ]


class WarroomUpdates:
    """``warroom-updates`` of the partitions' aggregates: one per partition with new events,
    at most one per ``interval_s`` of ``clock`` (the others wait for the next batch or tick)."""

    def __init__(self, topic: str, interval_s: float, clock: Callable[[], float]) -> None:
        self.topic = topic
        self.interval_s = interval_s
        self.clock = clock
        self._sent: dict[int, float] = {}
        self._pending: set[int] = set()

    def messages(self, changed: Iterable[int], aggregates: Mapping[int, PartitionAggregates]) -> list[Message]:
        """The updates due, given the partitions ``changed`` by this batch."""
        self._pending.update(changed)
        now = self.clock()
        out: list[Message] = []
        for partition in sorted(self._pending):
            if now - self._sent.get(partition, -1e18) < self.interval_s:
                continue
            agg = aggregates.get(partition)
            if agg is None:
                continue
            self._sent[partition] = now
            self._pending.discard(partition)
            value = orjson.dumps(agg.snapshot())
            out.append((OutRecord(self.topic, value, f"partition-{partition}".encode(), None), partition))
        return out


__all__ = ["Message", "TopicSink", "WarroomUpdates", "dead_letter_messages", "order_update_messages"]
