"""The worker's per-batch pipeline (its stages plug in through :mod:`stream.stage_api`).

One call of :meth:`Pipeline.process` handles one batch of ``order-events`` records (as the
worker's source collects them, :mod:`stream.kafka.batch_source`), in this order:

1. **core** (plain Python, no awaits): validate each record
   (:func:`stream.contract.validate_record`; failures become dead letters with their
   reason), skip duplicates (``event_id`` already in the order's timelines), apply the
   event to the SKU state machine (:mod:`stream.core.lifecycle`), account for it in the
   partition's per-minute aggregates and build its ``sku_events`` point;
2. **stages** (:class:`~stream.stage_api.Stage`), in the configured order, each
   ``await stage.process(ctx)`` with the :class:`~stream.stage_api.BatchContext`: they
   read what was accepted or refused, and add InfluxDB points, messages to emit,
   per-order extension state or their own keyed state;
3. **sinks** (:mod:`stream.sinks`, within one :class:`~stream.sinks.sink.Fence` per batch),
   all awaited before ``process`` returns:
   a. InfluxDB: the batch's points, and
   b. the topics: dead letters, ``order-updates`` (one per changed order, with its
      next ``seq`` and full snapshot), ``warroom-updates`` (one per partition, at most one
      per interval), stage messages; a and b run concurrently; then the chunks InfluxDB
      did not take go to ``influx-dlq`` (aggregate minutes stay pending instead and are
      rewritten with a later batch);
   c. the table changelog: the new state of each changed order (and stage entries,
      tombstones of expired orders), partition = the source partition;
   d. the in-memory table.

Why this order is safe under crashes: the worker acknowledges a batch's offsets only after
``process`` returned (:mod:`stream.kafka.batch_source`), so a committed offset never runs ahead
of InfluxDB, the outputs or the changelog. A crash anywhere in between replays the batch:
points are idempotent, updates carry the same ``seq`` again, and the changelog (if it was
already written) makes the replayed events duplicates, which change nothing. The changelog
goes last because once it holds an event, that event is a duplicate on replay and would
not produce its point or update again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from stream.contract import Rejection, validate_record
from stream.core.aggregates import PartitionAggregates
from stream.core.data_quality import abandoned_findings, abandoned_point
from stream.core.dlq import SourceCoordinates, dead_letter
from stream.core.lifecycle import apply_event
from stream.core.order_state import OrderState, new_order
from stream.core.replay import REPLAY_EXTENSION, replay_of, timeline_of_order
from stream.core.retention import Clock, RetentionIndex, RetentionSettings, sweep
from stream.sinks.changelog import ChangelogSink, Entry
from stream.sinks.influx import InfluxSink, InfluxWriter, gather_cancelling
from stream.sinks.line_protocol import CellFunction, point_line, sku_event_line
from stream.sinks.outbox import Outbox
from stream.sinks.sink import Fence, unfenced
from stream.sinks.topic import Message, TopicSink, WarroomUpdates, dead_letter_messages, order_update_messages
from stream.stage_api import (
    Accepted,
    BatchContext,
    RestoringStage,
    SourceRecord,
    Stage,
    StageValue,
    TickingStage,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    """Real topic names (with the settings' prefix)."""

    dlq: str
    updates: str
    warroom: str
    influx_dlq: str
    changelog: str


@dataclass(frozen=True)
class PipelineConfig:
    topics: Topics
    #: Aggregates: minutes kept open behind the partition watermark.
    window_minutes: int = 120
    #: Closed orders are forgotten (tombstoned) after this much event time of quiet
    #: (``RetentionSettings.closed``, ``stream.core.retention``).
    closed_retention: timedelta = RetentionSettings().closed
    #: Open orders nobody updated for this long are forgotten too: abandoned, a data-quality
    #: finding (``RetentionSettings.abandoned_after``).
    open_retention: timedelta = RetentionSettings().abandoned_after
    #: At most one ``warroom-updates`` message per partition per this many seconds.
    warroom_interval_s: float = 1.0
    #: How often (wall clock) a partition's table is swept for expired orders.
    sweep_interval_s: float = 60.0
    #: The in-flight gauge is sampled when a partition's event-time minute moves on, and
    #: at least this often (wall clock) within a minute.
    inflight_sample_s: float = 10.0


@dataclass
class PipelineStats:
    batches: int = 0
    records: int = 0
    accepted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    influx_dead_lettered_lines: int = 0
    updates: int = 0
    expired_orders: int = 0
    #: Of the expired orders, those forgotten open (abandoned), and their open SKUs.
    abandoned_orders: int = 0
    abandoned_skus: int = 0
    skipped_revoked: int = 0


@dataclass
class _Minutes:
    """The aggregates' lines of one batch, and what to mark written once InfluxDB took them."""

    #: Wall clock (``Pipeline.clock``) when they were taken.
    at: float
    #: Minutes leaving the window (final), and the open ones (rewritten until final).
    final: list[str] = field(default_factory=list)
    open: list[str] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    #: Partitions whose in-flight gauge was sampled.
    sampled: list[int] = field(default_factory=list)
    #: A replay's aggregates (partition, replay id) -> whether sampled.
    replays: dict[tuple[int, str], bool] = field(default_factory=dict)


class Pipeline:
    """Runs batches through the core, the stages and the sinks (see the module doc)."""

    def __init__(
        self,
        config: PipelineConfig,
        store: MutableMapping[str, Any],
        outbox: Outbox,
        influx: InfluxWriter,
        stages: Sequence[Stage] = (),
        *,
        cell_of: CellFunction | None = None,
        owned: Callable[[int], bool] = lambda partition: True,
        confirm_membership: Callable[[], Awaitable[bool]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.topics = config.topics
        self.store = store
        self.outbox = outbox
        self.influx_sink = InfluxSink(influx, outbox, config.topics.influx_dlq)
        self.topic_sink = TopicSink(outbox)
        self.changelog_sink = ChangelogSink(outbox, config.topics.changelog)
        self.warroom = WarroomUpdates(config.topics.warroom, config.warroom_interval_s, lambda: self.clock())
        self.stages = list(stages)
        self.cell_of = cell_of
        self.owned = owned
        self.confirm_membership = confirm_membership
        self.clock = clock
        self.aggregates: dict[int, PartitionAggregates] = {}
        #: A replay's minutes (stream.core.replay) are kept apart: behind live traffic's window
        #: they would be final on arrival, and its in-flight gauge is not today's.
        self.replay_aggregates: dict[tuple[int, str], PartitionAggregates] = {}
        self.stats = PipelineStats()
        self._sampled_at: dict[int, float] = {}
        self._swept: dict[int, float] = {}
        #: Stored orders by clock and hour of their newest event: what a sweep looks at.
        self.retention_index = RetentionIndex()
        #: Newest event time per (partition, replay id or None for live): the clock expiry
        #: is measured against, so a replay's orders age in the replay's own time.
        self._newest_ns: dict[tuple[int, str | None], int] = {}

    @property
    def influx(self) -> InfluxWriter:
        return self.influx_sink.writer

    @influx.setter
    def influx(self, writer: InfluxWriter) -> None:
        self.influx_sink.writer = writer

    def _replay_aggregates(self, partition: int, replay: str) -> PartitionAggregates:
        agg = self.replay_aggregates.get((partition, replay))
        if agg is None:
            agg = self.replay_aggregates[(partition, replay)] = PartitionAggregates(
                partition, self.config.window_minutes
            )
        return agg

    def _aggregates(self, partition: int) -> PartitionAggregates:
        agg = self.aggregates.get(partition)
        if agg is None:
            agg = self.aggregates[partition] = PartitionAggregates(partition, self.config.window_minutes)
        return agg

    # -- the batch ----------------------------------------------------------------------

    async def process(self, records: Sequence[SourceRecord], now: datetime) -> BatchContext:
        ctx = self._context(now, records)
        self._core(ctx)
        for stage in self.stages:
            await stage.process(ctx)
        await self._sink(ctx)
        self.stats.batches += 1
        self.stats.records += len(records)
        return ctx

    async def tick(self, now: datetime) -> BatchContext:
        """Timers without input: stage ticks and pending war-room updates."""
        ctx = self._context(now, ())
        for stage in self.stages:
            if isinstance(stage, TickingStage):
                await stage.tick(ctx)
        await self._sink(ctx)
        return ctx

    def _context(self, now: datetime, records: Sequence[SourceRecord]) -> BatchContext:
        ctx = BatchContext(now, records, self.store, self.aggregates)
        ctx.fence = self.outbox.fence or unfenced  # set on the outbox after the pipeline is built
        ctx.owned = self.owned
        return ctx

    def _core(self, ctx: BatchContext) -> None:
        now = ctx.now
        store = self.store
        # Records of partitions not owned (revoked meanwhile) are left to the new owner;
        # the worker reads them again if the partition comes back.
        skip = {p for p in ctx.partitions if not self.owned(p)}
        if skip:
            ctx.dropped_partitions |= skip
            self.stats.skipped_revoked += sum(1 for r in ctx.records if r.partition in skip)
        for record in ctx.records:
            if skip and record.partition in skip:
                continue
            result = validate_record(record.key, record.value, now)
            if isinstance(result, Rejection):
                source = SourceCoordinates(record.topic, record.partition, record.offset, record.timestamp_ms)
                letter = dead_letter(result, source, record.key, record.value, record.headers, now)
                ctx.dead_letters.append((record, letter))
                continue
            event = result
            order_id = event.order_id
            order = ctx.orders.get(order_id)
            if order is None:
                stored = store.get(order_id)
                order = stored if isinstance(stored, OrderState) else new_order(order_id, record.partition)
            if order.partition != record.partition:
                log.warning(
                    "order %s moved from partition %d to %d (producer partitioning changed?)",
                    order_id,
                    order.partition,
                    record.partition,
                )
                order = replace(order, partition=record.partition)
            time_ns = event.event_ts_ns
            order, change = apply_event(order, event, time_ns)
            if change is None:
                ctx.duplicates += 1
                continue
            # A replay of history (stream.core.replay) is kept on the order and has its own clock.
            replay = replay_of(record.headers)
            if replay is not None and timeline_of_order(dict(order.extensions)) != replay:
                order = order.with_extension(REPLAY_EXTENSION, {"id": replay})
            clock = (record.partition, replay)
            self._newest_ns[clock] = max(self._newest_ns.get(clock, 0), time_ns)
            ctx.orders[order_id] = order
            ctx.to_publish.add(order_id)
            ctx.accepted.append(Accepted(record, event, change))
            if replay is None:
                self._aggregates(record.partition).observe(change)
            else:
                self._replay_aggregates(record.partition, replay).observe(change)
            ctx.lines.append(
                sku_event_line(event, change, self.cell_of, partition=record.partition, offset=record.offset)
            )

    # -- sinks --------------------------------------------------------------------------

    async def _sink(self, ctx: BatchContext) -> None:
        # Sequence numbers of the orders to publish.
        for order_id in ctx.to_publish:
            o = ctx.orders[order_id]
            ctx.orders[order_id] = OrderState(o.order_id, o.partition, o.skus, o.last_event_ns, o.seq + 1, o.extensions)
        tombstones = self._sweep(ctx)
        minutes = self._minutes(ctx)
        messages = await self._messages(ctx)
        fence = await self._fence(ctx)

        # a + b. InfluxDB and the topics, concurrently (independent of each other). One
        # write (fewer requests per batch): the points first, the open aggregates last. A
        # fenced write or send cancels the other and drops the batch. A tick of a worker
        # that owns none of its partitions (between a revocation and the next assignment)
        # writes no stage lines either: they are its old partitions'.
        idle = not ctx.records and not any(self.owned(p) for p in self.aggregates)
        points = [] if fence.fenced or idle else ctx.lines + minutes.final
        report, _ = await gather_cancelling(
            self.influx_sink.write(points + minutes.open, fence), self.topic_sink.write(messages, fence)
        )
        if not fence.fenced and not any(f.start + len(f.lines) > len(points) for f in report.failed):
            self._minutes_written(minutes)
        # Points InfluxDB did not take go to influx-dlq before the batch counts as done.
        # Spread over the topic by the batch's first source partition (points are idempotent).
        first = min(ctx.partitions) if ctx.partitions else 0
        self.stats.influx_dead_lettered_lines += await self.influx_sink.dead_letter(report, len(points), first)

        # c. changelog (membership checked again: the writes above may have been slow)
        confirmed = fence.fenced or await self._membership_confirmed()
        if not confirmed:
            log.warning("membership not confirmed before the changelog write; leaving the batch to the new owner")
        fence.recheck(confirmed)
        ctx.dropped_partitions |= set(ctx.partitions) if fence.fenced else fence.revoked
        entries: list[Entry] = [(order_id, order, order.partition) for order_id, order in ctx.orders.items()]
        for table_key, change in ctx.stage_changes.items():
            if isinstance(change, StageValue):
                entries.append((table_key, change, change.partition))
            else:
                entries.append((table_key, None, change[1]))
        entries.extend((order_id, None, partition) for order_id, partition in tombstones)
        await self.changelog_sink.write(entries, fence)

        # d. memory
        for order_id, order in ctx.orders.items():
            if not fence.dropped(order.partition):
                self.store[order_id] = order
                self.retention_index.note(order_id, _clock_of(order), order.last_event_ns)
        for table_key, change in ctx.stage_changes.items():
            if fence.dropped(change.partition if isinstance(change, StageValue) else change[1]):
                continue
            if isinstance(change, StageValue):
                self.store[table_key] = change
            else:
                self.store.pop(table_key, None)
        for order_id, partition in tombstones:
            if not fence.dropped(partition):
                self.store.pop(order_id, None)
                self.retention_index.discard(order_id)
        self.stats.accepted += len(ctx.accepted)
        self.stats.duplicates += ctx.duplicates
        self.stats.dead_lettered += len(ctx.dead_letters)
        self.stats.updates += len(ctx.to_publish)
        self.stats.expired_orders += len(tombstones)

    def _minutes(self, ctx: BatchContext) -> _Minutes:
        """Aggregates: dirty minutes, final minutes leaving the window, and an in-flight
        sample when the partition's event-time minute moved on or every sample interval."""
        minutes = _Minutes(self.clock())
        # Only partitions owned now: after a revocation (until the next assignment rebuilds
        # them) the aggregates of revoked partitions are still in memory, and a tick would
        # write them over their new owner's.
        candidates = self.aggregates if not ctx.records else ctx.partitions & set(self.aggregates)
        minutes.partitions = sorted(p for p in candidates if self.owned(p))
        for partition in minutes.partitions:
            agg = self.aggregates[partition]
            minutes.final.extend(map(point_line, agg.expire()))
            sample = (
                agg.sample_minute != agg.sampled_minute
                or minutes.at - self._sampled_at.get(partition, -1e18) >= self.config.inflight_sample_s
            )
            minutes.open.extend(map(point_line, agg.pending_points(sample)))
            if sample:
                minutes.sampled.append(partition)
        replays = sorted(
            k for k in self.replay_aggregates if (not ctx.records or k[0] in ctx.partitions) and self.owned(k[0])
        )
        for key in replays:  # a replay's minutes move with its own events only
            agg = self.replay_aggregates[key]
            minutes.final.extend(map(point_line, agg.expire()))
            minutes.replays[key] = agg.sample_minute != agg.sampled_minute
            minutes.open.extend(map(point_line, agg.pending_points(minutes.replays[key])))
        return minutes

    def _minutes_written(self, minutes: _Minutes) -> None:
        for partition in minutes.partitions:
            self.aggregates[partition].mark_written(partition in minutes.sampled)
        for partition in minutes.sampled:
            self._sampled_at[partition] = minutes.at
        for key, sampled in minutes.replays.items():
            self.replay_aggregates[key].mark_written(sampled)

    async def _messages(self, ctx: BatchContext) -> list[Message]:
        out: list[Message] = []
        if ctx.dead_letters:
            letters = [(record.partition, record.key, letter) for record, letter in ctx.dead_letters]
            out.extend(dead_letter_messages(self.topics.dlq, letters, await self._count(self.topics.dlq)))
        out.extend(order_update_messages(self.topics.updates, [ctx.orders[o] for o in ctx.to_publish]))
        out.extend(self.warroom.messages((a.record.partition for a in ctx.accepted), self.aggregates))
        out.extend(ctx.emitted)
        return out

    async def _fence(self, ctx: BatchContext) -> Fence:
        """The batch's fence. Outputs of a partition revoked meanwhile are dropped: its new
        owner replays them. A worker that cannot confirm its membership (it was frozen past
        its session) treats every partition as revoked: its successor may already have written."""
        fenced = not await self._membership_confirmed()
        revoked = {p for p in ctx.partitions if fenced or not self.owned(p)} - ctx.dropped_partitions
        if revoked:
            log.warning(
                "partitions %s were revoked during the batch%s; leaving their records to the new owner",
                sorted(revoked),
                " (membership not confirmed)" if fenced else "",
            )
            self.stats.skipped_revoked += sum(1 for r in ctx.records if r.partition in revoked)
        return Fence(self.owned, self.outbox.fence or unfenced, fenced, frozenset(revoked))

    async def _membership_confirmed(self) -> bool:
        return True if self.confirm_membership is None else await self.confirm_membership()

    async def _count(self, topic: str) -> int:
        return len(await self.outbox.partitions(topic))

    def _sweep(self, ctx: BatchContext) -> list[tuple[str, int]]:
        """Expired orders of the batch's partitions, at most once per sweep interval each."""
        now = self.clock()
        due = [p for p in ctx.partitions if now - self._swept.get(p, now) >= self.config.sweep_interval_s]
        for p in ctx.partitions:
            self._swept.setdefault(p, now)
        if not due:
            return []
        closed_ns = int(self.config.closed_retention.total_seconds() * 1e9)
        open_ns = int(self.config.open_retention.total_seconds() * 1e9)
        out: list[tuple[str, int]] = []
        abandoned = 0
        for p in due:
            self._swept[p] = now
        for gone in sweep(self.store, self.retention_index, self._newest_ns, set(due), closed_ns, open_ns, ctx.orders):
            out.append((gone.order_id, gone.partition))
            if gone.abandoned:
                # A data-quality finding per open SKU (stream.core.data_quality).
                findings = abandoned_findings(gone.order, gone.watermark_ns)
                ctx.lines.extend(point_line(abandoned_point(f, gone.order, gone.partition)) for f in findings)
                abandoned += 1
                self.stats.abandoned_skus += len(findings)
        if out:
            log.info("forgetting %d expired orders (%d abandoned open)", len(out), abandoned)
        self.stats.abandoned_orders += abandoned
        return out

    # -- recovery -----------------------------------------------------------------------

    async def recovered(self, partitions: set[int]) -> None:
        """The table now holds exactly the recovered state of ``partitions``: drop what
        belongs to other partitions, rebuild the aggregates, hand stages their state."""
        for key, value in list(self.store.items()):
            partition = value.partition if isinstance(value, (OrderState, StageValue)) else None
            if partition is not None and partition not in partitions:
                del self.store[key]
        orders = [v for v in self.store.values() if isinstance(v, OrderState)]
        by_partition: dict[int, list[OrderState]] = {p: [] for p in partitions}
        for order in orders:
            by_partition.setdefault(order.partition, []).append(order)
        replayed: dict[tuple[int, str], list[OrderState]] = {}
        for p, found in by_partition.items():
            for order in found:
                replay = timeline_of_order(dict(order.extensions))
                if replay is not None:
                    replayed.setdefault((p, replay), []).append(order)
        self.aggregates = {
            p: PartitionAggregates.rebuild(
                p, [o for o in found if timeline_of_order(dict(o.extensions)) is None], self.config.window_minutes
            )
            for p, found in by_partition.items()
        }
        self.replay_aggregates = {
            key: PartitionAggregates.rebuild(key[0], found, self.config.window_minutes)
            for key, found in replayed.items()
        }
        self._newest_ns = {}
        self.retention_index = RetentionIndex()
        for key, value in self.store.items():
            if isinstance(value, OrderState):
                clock = _clock_of(value)
                self._newest_ns[clock] = max(self._newest_ns.get(clock, 0), value.last_event_ns)
                self.retention_index.note(key, clock, value.last_event_ns)
        for stage in self.stages:
            if isinstance(stage, RestoringStage):
                entries = {
                    v.key: v.data for v in self.store.values() if isinstance(v, StageValue) and v.stage == stage.name
                }
                await stage.restore(entries, set(partitions))
        log.info("state recovered: %d orders in partitions %s", len(orders), sorted(partitions))


def _clock_of(order: OrderState) -> Clock:
    """The clock an order ages by: its partition's live traffic, or its replay's."""
    replay = timeline_of_order(dict(order.extensions)) if REPLAY_EXTENSION in order.extensions else None
    return (order.partition, replay)


__all__ = ["Pipeline", "PipelineConfig", "PipelineStats", "Topics"]
