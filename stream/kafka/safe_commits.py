"""Faust's Kafka consumer with commits by acknowledgement frontier, for the worker's Faust agents.

The pipeline's source (``order-events``) is not read through Faust any more
(:mod:`stream.kafka.batch_source`); the worker's remaining Faust agents (alerting) acknowledge
record by record. For them the commit is the first delivered offset not yet acknowledged,
or one past the last delivered one (:mod:`stream.kafka.commit_frontier`).

Faust's own commit bookkeeping (sorted acked lists plus read "gaps") crawled one offset per
commit interval when offsets were delivered twice (robinhood/faust#625,
faust-streaming/faust#606).

:func:`install` must run before anything touches ``app.transport`` (before the first
``app.topic``), since Faust creates the transport, and with it the consumer, lazily.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Set
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

from stream.kafka.commit_frontier import CommitFrontier


class SafeCommitConsumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._frontiers: dict[TP, CommitFrontier] = {}
        self.callback = self._tracking_deliveries(self.callback)

    def _tracking_deliveries(
        self, deliver: Callable[[Message], Awaitable[None]]
    ) -> Callable[[Message], Awaitable[None]]:
        app = self.app
        frontiers = self._frontiers

        async def on_message(message: Message) -> None:
            if app.topics.acks_enabled_for(message.topic):
                frontier = frontiers.get(message.tp)
                if frontier is None:
                    frontier = frontiers[message.tp] = CommitFrontier()
                frontier.delivered(message.offset)
            await deliver(message)

        return on_message

    def ack(self, message: Message) -> bool:
        frontier = self._frontiers.get(message.tp)
        if frontier is not None:
            frontier.acknowledged(message.offset)
        return super().ack(message)

    def _new_offset(self, tp: TP) -> int | None:
        # Faust's own lists are not consulted; empty them so they do not grow. The key
        # stays in ``_acked``: Faust looks for partitions to commit among its keys.
        acked = self._acked.get(tp)
        if acked:
            acked.clear()
            self._acked_index[tp].clear()
        self._gap.pop(tp, None)
        frontier = self._frontiers.get(tp)
        return frontier.offset() if frontier is not None else None

    async def on_partitions_revoked(self, revoked: Set[TP]) -> None:
        # A frontier starts afresh: Faust seeks to the committed offsets after an assignment.
        for tp in revoked:
            self._frontiers.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Set[TP], generation_id: int = 0) -> None:
        for tp in assigned:
            self._frontiers.pop(tp, None)
        await super().on_partitions_assigned(assigned, generation_id)


class SafeCommitTransport(faust_aiokafka.Transport):
    Consumer = SafeCommitConsumer


def install(app: faust.App) -> None:
    """Make ``app`` consume through :class:`SafeCommitConsumer`."""
    if app._transport is not None:  # Faust has no public hook for this
        raise RuntimeError("install() must run before the app's transport is created")
    app.transport = SafeCommitTransport(app.conf.broker_consumer, app)
