"""Faust's Kafka consumer with cursor-based processing and safe commits, and a membership lease.

Faust keeps fetching, committing on its cadence and rebalancing. This subclass replaces:
- For the topics given to :func:`install` (the pipeline's source): which delivered records
  the agent may process. A cursor per partition (:mod:`stream.partition_cursor`) is set when
  Faust seeks to the committed offsets after an assignment, and each written batch moves it
  on. :meth:`SafeCommitConsumer.admit` filters a batch through it. Records Faust lost between
  fetch and agent are read again (:meth:`SafeCommitConsumer.reread_pending`), and records
  fetched while a rebalance runs are held back and read again after it. The commit is the
  cursor: every offset below it was processed and written, in order.
- For the other topics (agents that acknowledge record by record): the commit is the first
  delivered offset not yet acknowledged, or one past the last delivered one
  (:mod:`stream.commit_frontier`).

Faust's own commit bookkeeping (sorted acked lists plus read "gaps") crawled one offset per
commit interval when offsets were delivered twice (robinhood/faust#625,
faust-streaming/faust#606). Its delivery path can also lose a record around a rebalance
(see :mod:`stream.partition_cursor`).

The consumer also keeps a :class:`stream.membership_lease.MembershipLease`, renewed by
every successful heartbeat (from the consumer thread, where aiokafka heartbeats) and every
assignment; the pipeline checks it before writing state (see :func:`confirm_membership`).

:func:`install` must run before anything touches ``app.transport`` (before the first
``app.topic``), since Faust creates the transport, and with it the consumer, lazily.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

from stream.commit_frontier import CommitFrontier
from stream.membership_lease import MembershipLease
from stream.partition_cursor import Admission, PartitionCursors, admit

log = logging.getLogger(__name__)

#: Where the first record at or after an offset is (see :mod:`stream.log_probe`).
LogProbe = Callable[[TP, int], Awaitable["int | None"]]


@dataclass
class CursorStats:
    """What the cursors filtered (logged when the worker stops)."""

    behind: int = 0  #: re-delivered records skipped
    ahead: int = 0  #: records skipped because earlier ones had not arrived
    unpositioned: int = 0  #: records delivered before the seek to the committed offsets
    held_back: int = 0  #: records fetched while a rebalance ran (read again after it)
    rereads: int = 0  #: partitions read again from their cursor
    holes: int = 0  #: holes in the log moved past


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


class _ReadOffsets(dict):  # type: ignore[type-arg]
    """Faust drops a fetched record whose offset is below the partition's "read offset",
    which it moves on as it delivers. After a seek back (a re-read) that filter drops the
    very records asked for. For topics under cursors, which decide what is processed
    instead, lookups answer ``None`` (deliver); for the others Faust's filter stays."""

    def __init__(self, unfiltered: Set[str]) -> None:
        super().__init__()
        self._unfiltered = unfiltered

    def __getitem__(self, tp: TP) -> int | None:
        return None if tp.topic in self._unfiltered else self.get(tp)


#: After a re-read is asked, how long later gaps at the same cursor are taken for records
#: fetched before the seek (still on their way) rather than a re-read that did not happen.
REREAD_PATIENCE_S = 5.0


class SafeCommitConsumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Topics whose records go through cursors (given to :func:`install`); the others
        #: (agents that process record by record) commit by acknowledgement frontier.
        self._cursor_topics: set[str] = set(getattr(self.transport, "cursor_topics", ()))
        self._read_offset = _ReadOffsets(self._cursor_topics)
        self._frontiers: dict[TP, CommitFrontier] = {}
        self.callback = self._tracking_deliveries(self.callback)
        self.cursors: PartitionCursors[TP] = PartitionCursors()
        #: Partitions to read again from their cursor (see :meth:`reread_pending`).
        self._reread: set[TP] = set()
        #: The last re-read of each partition: (cursor, monotonic time).
        self._sought: dict[TP, tuple[int, float]] = {}
        #: Gaps seen while a re-read was under way: the cursor they were seen at.
        self._gaps: dict[TP, int] = {}
        #: Finds holes in the log before a repeated re-read (given to :func:`install`).
        self.probe: LogProbe | None = getattr(self.transport, "probe", None)
        self.cursor_stats = CursorStats()
        session_s = float(self.app.conf.broker_session_timeout)
        self.lease = MembershipLease(session_s, margin_s=session_s / 3)

    def _tracking_deliveries(self, deliver: Callable[[Message], Awaitable[None]]
                             ) -> Callable[[Message], Awaitable[None]]:
        app = self.app
        frontiers = self._frontiers
        cursor_topics = self._cursor_topics

        async def on_message(message: Message) -> None:
            if message.topic in cursor_topics:
                if app.rebalancing:
                    # Faust fetches while its table recovery runs, then clears the agents'
                    # queues when the rebalance ends: a record delivered in between would
                    # vanish. Dropped here instead, knowingly; the partition is read again
                    # from its cursor once the rebalance is over.
                    self.cursor_stats.held_back += 1
                    self._reread.add(message.tp)
                    return
            elif app.topics.acks_enabled_for(message.topic):
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

    def _new_consumer_thread(self) -> LeasedConsumerThread:
        return LeasedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    # -- processing --------------------------------------------------------------------

    def admit(self, tp: TP, offsets: Sequence[int]) -> tuple[Admission | None, int]:
        """Which of ``tp``'s delivered offsets a batch may process, and the cursor's epoch.

        ``None`` while the partition's position is unknown (delivered before the seek to
        the committed offsets): nothing is processed, the partition is read again.
        """
        cursor, epoch = self.cursors.position(tp)
        if cursor is None:
            self.cursor_stats.unpositioned += len(offsets)
            self._reread.add(tp)
            return None, epoch
        admission = admit(cursor, offsets)
        self.cursor_stats.behind += admission.behind
        self.cursor_stats.ahead += admission.ahead
        if admission.ahead:
            if self._reread_under_way(tp, admission.next_offset):
                # Probably records fetched before the seek; if the gap is still there once
                # the patience has run out, the tick reads again (and looks for a hole).
                self._gaps[tp] = admission.next_offset
            else:
                log.warning("%s[%d]: offset %d was not delivered; %d later records (from %d) skipped, "
                            "reading again from %d", tp.topic, tp.partition, admission.next_offset,
                            admission.ahead, admission.first_ahead, admission.next_offset)
                self._reread.add(tp)
        return admission, epoch

    def _reread_under_way(self, tp: TP, cursor: int) -> bool:
        sought = self._sought.get(tp)
        return sought is not None and sought[0] <= cursor and time.monotonic() - sought[1] < REREAD_PATIENCE_S

    def processed(self, tp: TP, next_offset: int, epoch: int) -> None:
        """The admitted records below ``next_offset`` are written: the cursor moves on."""
        self.cursors.advance(tp, next_offset, epoch)

    def not_processed(self, tp: TP) -> None:
        """Admitted records were not written (the batch dropped them): read them again."""
        self._reread.add(tp)

    async def reread_pending(self, *, from_tick: bool = False) -> None:
        """Seek every partition that needs it back to its cursor (past a hole in the log).

        Runs after each batch and on the worker's tick (``from_tick``); waits while a
        rebalance runs. Only the tick re-reads a gap that outlived
        :data:`REREAD_PATIENCE_S` and asks the broker whether it is a hole: a probe costs a
        connection and must not hold up a batch (or a revocation waiting for its acks).
        """
        now = time.monotonic()
        for tp, (offset, at) in list(self._sought.items()):
            cursor, _ = self.cursors.position(tp)
            if cursor is None or cursor > offset:
                del self._sought[tp]  # done (the records came) or reset by a rebalance
        for tp, offset in list(self._gaps.items()):
            cursor, _ = self.cursors.position(tp)
            if cursor != offset:
                del self._gaps[tp]
            elif from_tick and now - self._sought.get(tp, (offset, 0.0))[1] >= REREAD_PATIENCE_S:
                del self._gaps[tp]
                self._reread.add(tp)
        if not self._reread or self.app.rebalancing:
            return
        assigned = self.assignment()
        unpositioned = {tp for tp in self._reread if tp in assigned and self.cursors.position(tp)[0] is None}
        if unpositioned and from_tick:
            await self._position(unpositioned)
        for tp in sorted(self._reread):
            if tp not in assigned:
                self._reread.discard(tp)
                continue
            cursor, epoch = self.cursors.position(tp)
            if cursor is None:
                continue  # Faust's seek to the committed offsets comes first
            if self._sought.get(tp, (None,))[0] == cursor:
                # Read again from here before, and the record still did not come: maybe
                # there is none (a hole in the log).
                if not from_tick or self.probe is None:
                    continue
                first = await self.probe(tp, cursor)
                if self.app.rebalancing or tp not in self.assignment() or self.cursors.position(tp) != (cursor, epoch):
                    continue  # the world moved on during the probe; a later tick decides
                if first is not None and first > cursor:
                    log.info("%s[%d]: no records in offsets %d..%d (a hole in the log); moving on",
                             tp.topic, tp.partition, cursor, first - 1)
                    self.cursors.jump(tp, first, epoch)
                    self.cursor_stats.holes += 1
                    cursor = first
            await self._seek_to(tp, cursor)

    async def _seek_to(self, tp: TP, offset: int) -> None:
        self._reread.discard(tp)
        try:
            # In the consumer's thread: aiokafka's fetcher is not thread-safe (a seek from
            # here raced its record iteration: KeyError in fetched_records).
            await self.seek_wait({tp: offset})
        except (KafkaError, asyncio.TimeoutError) as exc:
            # Typically revoked meanwhile (IllegalStateError); if it is still ours, retry.
            log.info("%s[%d]: re-read from %d not started (%r); retrying if still assigned",
                     tp.topic, tp.partition, offset, exc)
            self._reread.add(tp)
            return
        self._sought[tp] = (offset, time.monotonic())
        self.cursor_stats.rereads += 1

    async def _position(self, tps: Set[TP]) -> None:
        """Set the cursors Faust's post-recovery seek did not set (it timed out, say), from
        the committed offsets; only these partitions (other agents' topics keep theirs)."""
        thread = self._thread
        consumer = thread._ensure_consumer()  # noqa: SLF001 - committed() of the thread's consumer
        try:
            committed = {tp: await thread.call_thread(consumer.committed, tp) for tp in tps}
            await self._start_cursors(committed)
        except (KafkaError, asyncio.TimeoutError) as exc:
            log.info("committed offsets of %s not read (%r); retrying on the next tick", sorted(tps), exc)

    # -- commits -----------------------------------------------------------------------

    def _new_offset(self, tp: TP) -> int | None:
        # Faust's own lists are not consulted; empty them so they do not grow. The key
        # stays in ``_acked``: Faust looks for partitions to commit among its keys.
        acked = self._acked.get(tp)
        if acked:
            acked.clear()
            self._acked_index[tp].clear()
        self._gap.pop(tp, None)
        if tp.topic in self._cursor_topics:
            return self.cursors.committable(tp)
        frontier = self._frontiers.get(tp)
        return frontier.offset() if frontier is not None else None

    # -- positions ---------------------------------------------------------------------

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Faust's post-recovery seek: the committed offsets (or the log start) are the cursors."""
        committed = await super().seek_to_committed()
        await self._start_cursors({tp: offset for tp, offset in committed.items() if tp.topic in self._cursor_topics})
        return committed

    async def _start_cursors(self, committed: Mapping[TP, int | None]) -> None:
        """Cursors at the committed offsets; at the log start where nothing is committed."""
        fresh = [tp for tp, offset in committed.items() if not offset or offset < 0]
        starts = await self.earliest_offsets(*fresh) if fresh else {}
        for tp, offset in committed.items():
            self.cursors.start(tp, starts.get(tp, 0) if tp in fresh else int(offset or 0))

    async def on_partitions_revoked(self, revoked: Set[TP]) -> None:
        # A frontier starts afresh: Faust seeks to the committed offsets after an assignment.
        for tp in revoked:
            self._frontiers.pop(tp, None)
        self.cursors.forget(revoked)
        self._reread -= set(revoked)
        for tp in revoked:
            self._sought.pop(tp, None)
            self._gaps.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Set[TP], generation_id: int = 0) -> None:
        self.lease.renewed(time.monotonic())  # the group just synced with us as a member
        for tp in assigned:
            self._frontiers.pop(tp, None)
        self.cursors.forget(assigned)
        self._reread -= set(assigned)
        for tp in assigned:
            self._sought.pop(tp, None)
            self._gaps.pop(tp, None)
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
    #: Topics whose records go through cursors, and the hole probe (set by :func:`install`).
    cursor_topics: frozenset[str] = frozenset()
    probe: LogProbe | None = None


def install(app: faust.App, cursor_topics: Iterable[str] = (), probe: LogProbe | None = None) -> None:
    """Make ``app`` consume through :class:`SafeCommitConsumer`.

    The agent of each of ``cursor_topics`` must admit its batches through the consumer
    (:meth:`SafeCommitConsumer.admit`, ``processed``, ``reread_pending``); the other topics
    commit by acknowledgement frontier. ``probe`` tells a hole in the log from a lost record.
    """
    if app._transport is not None:  # noqa: SLF001 - Faust has no public hook for this
        raise RuntimeError("install() must run before the app's transport is created")
    transport = SafeCommitTransport(app.conf.broker_consumer, app)
    transport.cursor_topics = frozenset(cursor_topics)
    transport.probe = probe
    app.transport = transport
