"""Faust's Kafka consumer with safe commits and a membership lease.

Commits are taken from :class:`stream.commit_frontier.CommitFrontier`.

Faust keeps committing, cadence and rebalancing; this subclass replaces only how the
offset to commit is chosen (``_new_offset``): the first delivered offset of the partition
not yet acknowledged, or one past the last delivered one. Deliveries are counted where
the consumer hands a message to the conductor (every message an agent can see), acks
where the final reference of a message is released. A partition's frontier starts afresh
whenever the partition is revoked or assigned: Faust then seeks to the committed offsets,
so deliveries restart from there.

The consumer also keeps a :class:`stream.membership_lease.MembershipLease`, renewed by
every successful heartbeat (from the consumer thread, where aiokafka heartbeats) and every
assignment; the pipeline checks it before writing state (see :func:`confirm_membership`).

:func:`install` must run before anything touches ``app.transport`` (before the first
``app.topic``), since Faust creates the transport, and with it the consumer, lazily.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Set
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

from stream.commit_frontier import CommitFrontier
from stream.membership_lease import MembershipLease


class MembershipLost(RuntimeError):
    """Neither a heartbeat nor a rebalance confirmed or ended the membership in time."""


class LeasedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Renews the consumer's lease on every successful heartbeat."""

    consumer: SafeCommitConsumer

    async def on_start(self) -> None:
        await super().on_start()
        coordinator = getattr(self._consumer, "_coordinator", None)
        heartbeat = getattr(coordinator, "_do_heartbeat", None)
        if heartbeat is None:
            return  # no consumer group (client-only app)
        lease = self.consumer.lease

        async def _do_heartbeat() -> bool:
            sent_at = time.monotonic()
            ok = await heartbeat()
            # aiokafka also answers True to REBALANCE_IN_PROGRESS (it keeps heartbeating
            # while it rejoins), but then the member stays only until the rebalance's
            # join deadline: that does not renew the lease.
            rejoining = coordinator._rejoin_needed_fut.done()  # type: ignore[union-attr]
            if ok and not rejoining:
                lease.renewed(sent_at)
            return bool(ok)

        # aiokafka has no heartbeat callback; its heartbeat loop calls this attribute.
        coordinator._do_heartbeat = _do_heartbeat  # type: ignore[union-attr]


class SafeCommitConsumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._frontiers: dict[TP, CommitFrontier] = {}
        #: Partitions whose commits stop until the next assignment (see :meth:`hold`).
        self._held: set[TP] = set()
        self.callback = self._counting_deliveries(self.callback)
        session_s = float(self.app.conf.broker_session_timeout)
        self.lease = MembershipLease(session_s, margin_s=session_s / 3)

    def _new_consumer_thread(self) -> LeasedConsumerThread:
        return LeasedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _counting_deliveries(self, deliver: Callable[[Message], Awaitable[None]]
                             ) -> Callable[[Message], Awaitable[None]]:
        frontiers = self._frontiers

        async def on_message(message: Message) -> None:
            if self.app.topics.acks_enabled_for(message.topic):
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
        if tp in self._held:
            return None
        frontier = self._frontiers.get(tp)
        return frontier.offset() if frontier is not None else None

    def hold(self, tps: Set[TP]) -> None:
        """Stop committing ``tps`` until the next assignment.

        For a batch that wrote nothing for these partitions (revoked meanwhile, or the
        membership was not confirmed) but is still acknowledged: Faust waits for every
        message to be acknowledged before it completes a revocation, so the acks must
        happen, and they must not let a commit pass records that were not processed. The
        next assignment seeks to the committed offsets and delivers them again.
        """
        self._held.update(tps)

    def is_held(self, tp: TP) -> bool:
        return tp in self._held

    def in_flight(self) -> dict[TP, int]:
        """Delivered, unacknowledged messages per partition (for diagnostics)."""
        return {tp: f.in_flight for tp, f in self._frontiers.items() if f.in_flight}

    async def on_partitions_revoked(self, revoked: Set[TP]) -> None:
        for tp in revoked:
            self._frontiers.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Set[TP], generation_id: int = 0) -> None:
        self.lease.renewed(time.monotonic())  # the group just synced with us as a member
        self._held.clear()
        for tp in assigned:
            self._frontiers.pop(tp, None)
        await super().on_partitions_assigned(assigned, generation_id)

    async def confirm_membership(self, timeout_s: float, poll_s: float = 0.05) -> bool:
        """Whether this worker may write state for the partitions it holds now.

        ``True`` at once while the lease is valid. Otherwise (the worker was frozen, or
        heartbeats fail) waits for a heartbeat to renew it (``True``) or for a rebalance
        to start (``False``: treat every partition as revoked, the successor replays
        them). Raises :class:`MembershipLost` when neither happens within ``timeout_s``.
        """
        if not self.lease.ever_renewed:
            return False  # nothing was ever assigned
        deadline = time.monotonic() + timeout_s
        while not self.lease.valid(time.monotonic()):
            if self.app.rebalancing:
                return False
            if time.monotonic() >= deadline:
                raise MembershipLost(f"membership neither confirmed nor ended within {timeout_s:.0f}s")
            await asyncio.sleep(poll_s)  # a heartbeat runs in the consumer thread
        return True


class SafeCommitTransport(faust_aiokafka.Transport):
    Consumer = SafeCommitConsumer


def install(app: faust.App) -> None:
    """Make ``app`` consume through :class:`SafeCommitConsumer`."""
    if app._transport is not None:  # noqa: SLF001 - Faust has no public hook for this
        raise RuntimeError("install() must run before the app's transport is created")
    app.transport = SafeCommitTransport(app.conf.broker_consumer, app)
