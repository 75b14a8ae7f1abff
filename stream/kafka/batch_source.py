"""The worker's source: ``order-events`` read in batches with aiokafka, in a consumer group of its own.

Faust delivers one event object per record through per-partition queues, which costs more
than the whole pipeline (issue #19: a no-op Faust agent reads 3,000-13,000 events/s here,
aiokafka's ``getmany`` ~150,000). So the pipeline's input bypasses Faust: a
:class:`BatchSource` (a ``mode`` service run by the worker) consumes with ``getmany`` in the
group :func:`source_group` and hands :class:`~stream.stage_api.SourceRecord` batches to
:meth:`Pipeline.process`. Faust still runs the worker (timers, the alerting agent).

Offsets: a batch's offsets are committed only after :meth:`Pipeline.process` returned, which
is after InfluxDB, the outputs and the changelog acknowledged. aiokafka fetches each
partition in offset order from the committed offset, so no cursors are needed.

Rebalances (aiokafka's eager protocol: every partition is revoked, then the new set
assigned): :meth:`on_partitions_revoked` lets the batch in flight finish (or be dropped by the
pipeline when the membership can no longer be confirmed) before the group moves on; a batch
collected but not started is discarded (the next owner reads it from the committed offset).

State: the ``orders`` state lives in a plain dict (order id or stage key -> value) filled
from the changelog (:data:`stream.topics.changelog_topic`, partition = source partition),
or from a local snapshot and the changelog after it (:mod:`stream.sinks.local_snapshot`).
On assignment the source pauses each partition it did not hold (or whose in-memory state
is suspect: a batch of it was dropped) and reads its changelog in a task, outside aiokafka's
rebalance callback (heartbeats go on meanwhile); such a partition is owned, resumed and its
records processed only once its state is in the store. Each time the set of loaded
partitions changes, :meth:`Pipeline.recovered` drops other partitions' state, rebuilds the
aggregates and hands stages their state. A revocation cancels a read in progress.

Fencing: a :class:`~stream.kafka.membership_lease.MembershipLease` is renewed by each successful
heartbeat of this consumer (and each assignment). The pipeline confirms it before writing
(``confirm_membership``), and the pipeline's outbox checks it again right before records
are handed to the producer (:meth:`fence`): a worker frozen past its session (SIGSTOP, a VM
pause) drops its late writes instead of overwriting its successor's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any

import mode
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from config.settings import Settings
from stream.core.order_state import OrderState
from stream.kafka.changelog_restore import changelog_ends
from stream.kafka.membership_lease import MembershipLease
from stream.kafka.source_membership import confirm, rejoining, renew_on_heartbeats
from stream.pipeline import Pipeline
from stream.sinks.local_snapshot import LocalSnapshots, restore_state
from stream.sinks.outbox import OutboxFenced
from stream.stage_api import SourceRecord, StageValue

log = logging.getLogger(__name__)


def source_group(settings: Settings) -> str:
    """The consumer group whose committed offsets are the worker's progress on ``order-events``."""
    return f"{settings.faust_app_id}-source"


def _partition_of(value: object) -> int | None:
    return value.partition if isinstance(value, (OrderState, StageValue)) else None


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types
    def __init__(self, source: BatchSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.source.on_partitions_revoked({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.source.on_partitions_assigned({tp.partition for tp in assigned})


class BatchSource(mode.Service):
    """Consumes ``topic`` in batches into ``pipeline`` (see the module doc)."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        group: str,
        changelog: str,
        pipeline: Pipeline,
        store: MutableMapping[str, Any],
        lock: asyncio.Lock,
        batch_size: int,
        window_s: float,
        session_timeout_s: float,
        on_fatal: Callable[[BaseException], None],
        security: Mapping[str, Any] | None = None,
        client_id: str = "orderradar-source",
        snapshots: LocalSnapshots | None = None,
        **kwargs: Any,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.changelog = changelog
        self.pipeline = pipeline
        self.store = store
        self.lock = lock
        self.batch_size = batch_size
        self.window_s = window_s
        self.session_timeout_s = session_timeout_s
        self.on_fatal = on_fatal
        self.security = dict(security or {})
        self.client_id = client_id
        #: Local state snapshots: a restart reads its disk and the changelog tail (``None``: off).
        self.snapshots = snapshots
        if snapshots is not None:
            pipeline.changelog_sink.on_written = snapshots.note  # the keys of the next delta
        self.lease = MembershipLease(session_timeout_s, margin_s=session_timeout_s / 3)
        #: Partitions this worker owns: set on assignment, emptied once a revocation finished
        #: the batch in flight (aiokafka's own assignment is gone while that batch runs).
        self.owned: set[int] = set()
        #: Partitions whose state is in the store (read from the changelog, kept current).
        self._loaded: set[int] = set()
        #: Partitions whose in-memory state may differ from the changelog (a dropped batch).
        self._dirty: set[int] = set()
        #: Assigned partitions whose changelog is being read: paused, not owned until loaded.
        self._restoring: set[int] = set()
        #: The changelog end offset read to when each loaded partition's state was read.
        self._changelog_end: dict[int, int] = {}
        self._restore_task: asyncio.Future[None] | None = None
        self._epoch = 0
        self._rebalancing = False
        self._stopping = False
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Future[None] | None = None
        self._commit_task: asyncio.Future[None] | None = None
        self.batches = 0
        self.commit_failures = 0
        super().__init__(**kwargs)

    # -- lifecycle ----------------------------------------------------------------------

    async def on_start(self) -> None:
        session_ms = int(self.session_timeout_s * 1000)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(1000, session_ms // 4),
            rebalance_timeout_ms=max(30_000, session_ms * 3),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            **self.security,
        )
        consumer.subscribe([self.topic], listener=_Listener(self))
        self._consumer = consumer  # the first assignment may come within start()
        await consumer.start()
        renew_on_heartbeats(consumer, self.lease)
        self._task = asyncio.ensure_future(self._run())

    async def on_stop(self) -> None:
        self._stopping = True
        await self._cancel_restore()
        if self._task is not None:
            try:
                # The loop ends after its batch in flight (getmany waits at most the window).
                await asyncio.wait_for(asyncio.shield(self._task), timeout=max(20.0, 2 * self.session_timeout_s))
            except TimeoutError:
                log.warning("the source's batch did not finish in time; it stays uncommitted and is replayed")
                self._task.cancel()
            except Exception:
                pass
        await self.settle_commit()
        if self.snapshots is not None:
            await self.snapshots.save(self.store, self._clean_ends())
        if self._consumer is not None:
            await self._consumer.stop()  # leaves the group: the partitions move on at once
            self._consumer = None
        log.info("source stopped after %d batches (%d commits failed)", self.batches, self.commit_failures)

    # -- membership ---------------------------------------------------------------------

    @property
    def rebalancing(self) -> bool:
        return self._rebalancing or rejoining(self._consumer)

    def is_owned(self, partition: int) -> bool:
        return partition in self.owned

    def fence(self) -> None:
        """Raise :class:`OutboxFenced` unless the lease is valid now (the outbox calls it
        right before it hands records to the producer)."""
        if not self.lease.valid(time.monotonic()):
            raise OutboxFenced("membership lease expired (frozen or cut off past the session); write dropped")

    async def confirm_membership(self, poll_s: float = 0.05) -> bool:
        """Whether this worker may write state for the partitions it holds now
        (:func:`stream.kafka.source_membership.confirm`)."""
        return await confirm(self.lease, self.session_timeout_s, lambda: self.rebalancing, poll_s)

    # -- rebalances ---------------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: set[int]) -> None:
        self._rebalancing = True
        self._epoch += 1  # a collected batch not yet started is discarded
        await self._cancel_restore()  # its partitions stay unloaded: read again if they come back
        if self._loaded and not self.lease.valid(time.monotonic()):
            # Out of the group for a while (frozen, cut off): a successor may have written
            # these partitions meanwhile, so whichever come back are read again.
            log.warning(
                "membership lapsed; the state of partitions %s is read again if they come back", sorted(self._loaded)
            )
            self._dirty |= self._loaded
        async with self.lock:  # the batch in flight finishes (or is dropped) first
            await self.settle_commit()
            self.owned -= revoked
        log.info("source partitions revoked: %s", sorted(revoked))

    async def on_partitions_assigned(self, assigned: set[int]) -> None:
        """Partitions whose state is current are owned at once; the others are paused and
        their changelog read in a task: aiokafka sends no heartbeats until this callback
        returns, and a long read here got the member expelled (and the restore repeated)."""
        self.lease.renewed(time.monotonic())  # the group just synced with us as a member
        fresh: set[int] = set()
        try:
            async with self.lock:
                await self._check_changelog_ends(assigned & self._loaded - self._dirty)
                fresh = (assigned - self._loaded) | (self._dirty & assigned)
                self._loaded = set(assigned) - fresh
                # Drops the state of partitions not held any more and of those read again.
                await self.pipeline.recovered(set(self._loaded))
                self.owned = set(self._loaded)
                self._restoring = set(fresh)
                if fresh:
                    assert self._consumer is not None
                    self._consumer.pause(*(TopicPartition(self.topic, p) for p in fresh))
                    self._restore_task = asyncio.ensure_future(self._restore_in_background(fresh, self._epoch))
        except BaseException as exc:  # noqa: B036 - without state the worker must not go on
            log.critical("state recovery failed; stopping", exc_info=exc)
            self.on_fatal(exc)
            raise
        finally:
            self._rebalancing = False
        log.info("source partitions assigned: %s (state being read: %s)", sorted(assigned), sorted(fresh))

    def _clean_ends(self) -> dict[int, int]:
        """Owned partitions whose state matches their changelog, and the offset it ends at."""
        written = getattr(self.pipeline.outbox, "last_offsets", {})
        return {
            p: max(self._changelog_end.get(p, 0), written.get((self.changelog, p), -1) + 1)
            for p in self.owned - self._dirty - self._restoring
        }

    async def _check_changelog_ends(self, kept: set[int]) -> None:
        """A partition this worker held before may have been written by another owner
        meanwhile (this member was dropped from the group and no revocation told it): its
        state is read again unless the changelog ends where this worker left it."""
        if not kept:
            return
        written = getattr(self.pipeline.outbox, "last_offsets", {})
        try:
            ends = await changelog_ends(self.bootstrap, self.changelog, kept, self.security)
        except KafkaError as exc:
            log.warning("changelog end offsets unknown (%r): partitions %s are read again", exc, sorted(kept))
            self._dirty |= kept
            return
        for p in kept:
            expected = max(self._changelog_end.get(p, 0), written.get((self.changelog, p), -1) + 1)
            if ends[p] != expected:
                log.warning(
                    "changelog of partition %d ends at %d, this worker left it at %d: another owner "
                    "wrote it; its state is read again",
                    p,
                    ends[p],
                    expected,
                )
                self._dirty.add(p)

    async def _restore_in_background(self, fresh: set[int], epoch: int) -> None:
        """Read ``fresh`` partitions' changelog into a store of their own, then (unless a
        rebalance came meanwhile) add it, own and resume them."""
        try:
            loaded: dict[str, Any] = {}
            ends: dict[int, int] = {}
            started = time.monotonic()
            read = await restore_state(
                self.snapshots, self.bootstrap, self.changelog, fresh, loaded, self.security, ends_read=ends
            )
            async with self.lock:
                if epoch != self._epoch:
                    return
                self.store.update(loaded)
                self._changelog_end.update(ends)
                self._dirty -= fresh
                self._loaded |= fresh
                await self.pipeline.recovered(set(self._loaded))
                self.owned |= fresh
                self._restoring -= fresh
                assert self._consumer is not None
                self._consumer.resume(*(TopicPartition(self.topic, p) for p in fresh))
            log.info(
                "read %d changelog records of partitions %s in %.1fs", read, sorted(fresh), time.monotonic() - started
            )
        except asyncio.CancelledError:
            log.info("state read of partitions %s cancelled by a rebalance", sorted(fresh))
            raise
        except BaseException as exc:  # noqa: B036 - without state the worker must not go on
            log.critical("state recovery failed; stopping", exc_info=exc)
            self.on_fatal(exc)
            raise

    async def _cancel_restore(self) -> None:
        task, self._restore_task = self._restore_task, None
        self._restoring = set()
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])  # its failure, if any, was handled by the task (on_fatal)

    async def _restore(self, assigned: set[int]) -> None:
        fresh = (assigned - self._loaded) | (self._dirty & assigned)
        if fresh:
            for key, value in list(self.store.items()):
                if _partition_of(value) in fresh:
                    del self.store[key]
            started = time.monotonic()
            ends: dict[int, int] = {}
            read = await restore_state(
                self.snapshots, self.bootstrap, self.changelog, fresh, self.store, self.security, ends_read=ends
            )
            self._changelog_end.update(ends)
            log.info(
                "read %d changelog records of partitions %s in %.1fs", read, sorted(fresh), time.monotonic() - started
            )
        self._dirty -= fresh
        self._loaded = set(assigned)
        await self.pipeline.recovered(set(assigned))

    # -- the batch loop -----------------------------------------------------------------

    async def _collect(self, consumer: AIOKafkaConsumer) -> tuple[list[Any], int]:
        """Up to ``batch_size`` records, or what came within the window after the first, and
        the rebalance epoch they belong to.

        aiokafka returns records of the assignment active when ``getmany`` returns (it drops
        fetches of a revoked assignment, and a new one starts at the committed offsets), and
        nothing awaits between that and reading the epoch here. So records collected before
        an epoch change belong to the old assignment: they are dropped, the new assignment
        reads them again from the committed offsets.
        """
        out: list[Any] = []
        epoch = self._epoch
        deadline: float | None = None
        while len(out) < self.batch_size and not self._stopping:
            wait = self.window_s if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                break
            got = await consumer.getmany(timeout_ms=max(1, int(wait * 1000)), max_records=self.batch_size - len(out))
            if self._epoch != epoch:
                out.clear()
                epoch = self._epoch
                deadline = None
            for records in got.values():
                out.extend(records)
            if out and deadline is None:
                deadline = time.monotonic() + self.window_s
            if not got and out:
                break
        return out, epoch

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        try:
            while not self._stopping:
                records, epoch = await self._collect(consumer)
                if not records:
                    continue
                async with self.lock:
                    if epoch != self._epoch:
                        continue  # rebalanced meanwhile: the new assignment reads from the committed offsets
                    if self._restoring:
                        records = self._hold_back(consumer, records)
                        if not records:
                            continue
                    if self._dirty:
                        # A dropped batch left these partitions' state behind their records:
                        # nothing of them is processed until the state is read again (their
                        # points would differ from the next owner's).
                        records = [r for r in records if r.partition not in self._dirty]
                        if not records:
                            continue
                    await self._process(consumer, records)
                    if self.snapshots is not None:
                        self.snapshots.maybe_save(self.store, self._clean_ends())
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: B036 - never commit a failed batch
            log.critical("source batch failed; stopping without committing it", exc_info=exc)
            self.on_fatal(exc)
            raise

    def _hold_back(self, consumer: AIOKafkaConsumer, records: list[Any]) -> list[Any]:
        """Records of partitions whose state is still being read are never processed; the
        consumer goes back to the first of them (paused partitions normally return none)."""
        first: dict[int, int] = {}
        for r in records:
            if r.partition in self._restoring:
                first.setdefault(r.partition, r.offset)
        for p, offset in first.items():
            consumer.seek(TopicPartition(self.topic, p), offset)
        return [r for r in records if r.partition not in self._restoring]

    async def _process(self, consumer: AIOKafkaConsumer, raw: list[Any]) -> None:
        records = [
            SourceRecord(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, tuple(r.headers or ()))
            for r in raw
        ]
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for r in records:
            first.setdefault(r.partition, r.offset)
            last[r.partition] = r.offset
        try:
            ctx = await self.pipeline.process(records, datetime.now(UTC))
            dropped = set(ctx.dropped_partitions)
        except OutboxFenced as exc:
            log.warning("batch of partitions %s dropped: %s", sorted(first), exc)
            dropped = set(first)
        self.batches += 1
        if dropped:
            await self.repair(dropped, {p: first[p] for p in dropped})
        offsets = {
            TopicPartition(self.topic, p): OffsetAndMetadata(o + 1, "") for p, o in last.items() if p not in dropped
        }
        if offsets:
            # The commit's round trip overlaps the next batch; commits stay in order.
            await self.settle_commit()
            self._commit_task = asyncio.ensure_future(self._commit(consumer, offsets))

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # The batch is written; its records are read again by the next owner and are
            # duplicates there (idempotent).
            self.commit_failures += 1
            log.warning("commit of %s failed (rebalance?): %r", sorted(tp.partition for tp in offsets), exc)

    async def settle_commit(self) -> None:
        """Wait for the commit in flight, if any."""
        task, self._commit_task = self._commit_task, None
        if task is not None:
            await task

    async def repair(self, partitions: set[int], positions: Mapping[int, int]) -> None:
        """Records of ``partitions`` were read but their batch was not written: their state
        in memory may be ahead of the changelog. A rebalance reads them again anyway; else
        the consumer goes back to ``positions`` and their state is read again now."""
        self._dirty |= partitions
        if self.rebalancing:
            return
        assert self._consumer is not None
        for p, offset in positions.items():
            try:
                self._consumer.seek(TopicPartition(self.topic, p), offset)
            except (KafkaError, AssertionError) as exc:  # not assigned any more
                log.info("no seek back on %s[%d]: %r", self.topic, p, exc)
        await self._restore(set(self.owned))

    async def tick(self, run: Callable[[], Awaitable[object]]) -> None:
        """Run a pipeline tick under the batch lock; a fenced tick's partitions are read again."""
        async with self.lock:
            try:
                await run()
            except OutboxFenced as exc:
                log.warning("tick dropped: %s", exc)
                self._dirty |= set(self.owned)
                if not self.rebalancing:
                    await self._restore(set(self.owned))
