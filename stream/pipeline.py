"""The worker's per-batch pipeline, and the API its stages plug into.

One call of :meth:`Pipeline.process` handles one batch of ``order-events`` records (as the
worker's source collects them, :mod:`stream.batch_source`), in this order:

1. **core** (plain Python, no awaits): validate each record
   (:func:`stream.contract.validate_record`; failures become dead letters with their
   reason), skip duplicates (``event_id`` already in the order's timelines), apply the
   event to the SKU state machine (:mod:`stream.lifecycle`), account for it in the
   partition's per-minute aggregates and build its ``sku_events`` point;
2. **stages** (:class:`Stage`), in the configured order, each ``await stage.process(ctx)``
   with the :class:`BatchContext`: they read what was accepted or refused, and add InfluxDB
   points, messages to emit, per-order extension state or their own keyed state;
3. **sinks**, all awaited before ``process`` returns:
   a. InfluxDB: the batch's points, and
   b. the outbox: dead letters, ``order-updates`` (one per changed order, with its
      next ``seq`` and full snapshot), ``warroom-updates`` (one per partition, at most one
      per interval), stage messages; a and b run concurrently; then the chunks InfluxDB
      did not take go to ``influx-dlq`` (aggregate minutes stay pending instead and are
      rewritten with a later batch);
   c. the table changelog: the new state of each changed order (and stage entries,
      tombstones of expired orders), partition = the source partition;
   d. the in-memory table.

Why this order is safe under crashes: the worker acknowledges a batch's offsets only after
``process`` returned (:mod:`stream.batch_source`), so a committed offset never runs ahead
of InfluxDB, the outputs or the changelog. A crash anywhere in between replays the batch:
points are idempotent, updates carry the same ``seq`` again, and the changelog (if it was
already written) makes the replayed events duplicates, which change nothing. The changelog
goes last because once it holds an event, that event is a duplicate on replay and would
not produce its point or update again.

Extension API (for delays/SLA, geo, alerting, ...): a :class:`Stage` has a ``name`` and
``async def process(self, ctx: BatchContext)``; optional ``restore`` and ``tick`` hooks.
In ``process`` a stage reads ``ctx.accepted`` (event, SKU change: outcome, before/after
state, illegal reason), ``ctx.accepted_by_partition()``, ``ctx.dead_letters``,
``ctx.order(order_id)``, and adds ``ctx.lines`` (InfluxDB points), ``ctx.emit(...)``
(messages), ``ctx.update_order(order.with_extension(name, value))`` (per-order state,
changelogged and shown in the order's snapshot) and ``ctx.stage_put/get/delete`` (keyed
stage state, changelogged, handed back to ``restore`` after a restart or rebalance).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import msgspec
import orjson

from stream.aggregates import PartitionAggregates
from stream.contract import OrderEvent, Rejection, validate_record
from stream.data_quality import abandoned_findings, abandoned_line
from stream.dlq import DeadLetter, InfluxFailure, SourceCoordinates, chunk_lines, dead_letter, influx_headers
from stream.dlq import encode as encode_dead_letter
from stream.lifecycle import EventChange, apply_event
from stream.order_state import OrderState, new_order, state_record
from stream.replay import REPLAY_EXTENSION, replay_of, timeline_of_order
from stream.retention import Clock, RetentionIndex, RetentionSettings, sweep
from stream.rollup import order_snapshot
from stream.sinks.influx import InfluxWriter, gather_cancelling
from stream.sinks.line_protocol import CellFunction, sku_event_line
from stream.sinks.outbox import Outbox, OutRecord
from stream.state_codec import OrderRecord, StateFormatError, order_from_dict, order_from_record, order_record

log = logging.getLogger(__name__)

#: Prefix of table keys holding stage state (``#`` cannot occur in an order id).
STAGE_KEY_PREFIX = "#"


@state_record
class SourceRecord:
    """One input record as the pipeline sees it (decoupled from Faust's event type)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@state_record
class Accepted:
    """A valid, new event and what it did to its SKU."""

    record: SourceRecord
    event: OrderEvent
    change: EventChange


@dataclass(frozen=True, slots=True)
class StageValue:
    """A stage's keyed state entry, stored in the worker's table beside the orders."""

    stage: str
    key: str
    partition: int
    data: Any


def stage_table_key(stage: str, key: str) -> str:
    return f"{STAGE_KEY_PREFIX}{stage}{STAGE_KEY_PREFIX}{key}"


# -- table value encoding (the changelog format) ---------------------------------------------
# msgpack arrays tagged by kind and version (``o2``: order, ``s2``: stage entry); a value
# starting with ``{`` is version 1 (JSON), still read after an upgrade.


class StageRecord(msgspec.Struct, array_like=True, tag="s2"):
    stage: str
    key: str
    partition: int
    #: JSON, as stages were promised (see :meth:`BatchContext.stage_put`).
    data: bytes


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(OrderRecord | StageRecord)


def encode_value(value: OrderState | StageValue) -> bytes:
    if isinstance(value, StageValue):
        return _ENCODER.encode(StageRecord(value.stage, value.key, value.partition, orjson.dumps(value.data)))
    return _ENCODER.encode(order_record(value))


def decode_value(raw: bytes) -> OrderState | StageValue:
    if raw[:1] == b"{":
        return _decode_v1(raw)
    try:
        record = _DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        raise StateFormatError(f"table value is not a known state record: {exc} ({raw[:80]!r})") from exc
    if isinstance(record, StageRecord):
        try:
            return StageValue(record.stage, record.key, record.partition, orjson.loads(record.data))
        except orjson.JSONDecodeError as exc:
            raise StateFormatError(f"bad stage value {record.stage}/{record.key}: {exc}") from exc
    return order_from_record(record)


def _decode_v1(raw: bytes) -> OrderState | StageValue:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StateFormatError(f"table value is not JSON: {raw[:80]!r}") from exc
    if not isinstance(obj, dict):
        raise StateFormatError(f"table value is not an object: {raw[:80]!r}")
    if obj.get("kind") == "stage":
        return StageValue(obj["stage"], obj["key"], int(obj["partition"]), obj["data"])
    return order_from_dict(obj)


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
    #: (``RetentionSettings.closed``, ``stream.retention``).
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


def _unfenced() -> None:
    pass


def _owns_all(partition: int) -> bool:
    return True


class BatchContext:
    """What one batch did so far, and the handles stages use to add to it."""

    def __init__(
        self,
        now: datetime,
        records: Sequence[SourceRecord],
        store: Mapping[str, object],
        aggregates: Mapping[int, PartitionAggregates],
    ) -> None:
        #: Wall-clock time the batch was taken (UTC); event logic uses event time instead.
        self.now = now
        self.records = records
        self.accepted: list[Accepted] = []
        self.dead_letters: list[tuple[SourceRecord, DeadLetter]] = []
        self.duplicates = 0
        #: Orders changed in this batch: their current state.
        self.orders: dict[str, OrderState] = {}
        #: InfluxDB points to write before the batch is acknowledged.
        self.lines: list[str] = []
        self.aggregates = aggregates
        self._store = store
        self._publish: set[str] = set()
        self._emitted: list[tuple[OutRecord, int | None]] = []
        self._stage_changes: dict[str, StageValue | tuple[str, int]] = {}
        #: Source partitions of this batch whose records wrote no state (revoked meanwhile,
        #: or membership not confirmed): their offsets must not be committed.
        self.dropped_partitions: set[int] = set()
        #: For stages whose side effects bypass the outbox (customer notices over HTTP): the
        #: pipeline outbox's fence (raises ``OutboxFenced`` once this worker may have been
        #: replaced) and whether a source partition is owned now. Set by the pipeline.
        self.fence: Callable[[], None] = _unfenced
        self.owned: Callable[[int], bool] = _owns_all

    # -- reading ------------------------------------------------------------------------

    def order(self, order_id: str) -> OrderState | None:
        """Current state of an order (changed in this batch or as stored)."""
        found = self.orders.get(order_id)
        if found is not None:
            return found
        stored = self._store.get(order_id)
        return stored if isinstance(stored, OrderState) else None

    def accepted_by_partition(self) -> dict[int, list[Accepted]]:
        out: dict[int, list[Accepted]] = {}
        for item in self.accepted:
            out.setdefault(item.record.partition, []).append(item)
        return out

    @property
    def partitions(self) -> set[int]:
        return {r.partition for r in self.records}

    # -- adding -------------------------------------------------------------------------

    def update_order(self, order: OrderState, publish: bool = True) -> None:
        """Store a changed order (e.g. with new extension state); ``publish``: send an
        ``order-updates`` message for it in this batch."""
        self.orders[order.order_id] = order
        if publish:
            self._publish.add(order.order_id)

    def emit(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        source_partition: int | None = None,
    ) -> None:
        """Send a message with the batch's outputs (``topic`` is the real topic name).
        ``source_partition``: the input partition it derives from; if that partition was
        revoked meanwhile the message is dropped with the batch's other outputs for it."""
        self._emitted.append((OutRecord(topic, value, key, partition, tuple(headers)), source_partition))

    def stage_get(self, stage: str, key: str) -> Any | None:
        table_key = stage_table_key(stage, key)
        change = self._stage_changes.get(table_key)
        if isinstance(change, StageValue):
            return change.data
        if change is not None:
            return None
        stored = self._store.get(table_key)
        return stored.data if isinstance(stored, StageValue) else None

    def stage_put(self, stage: str, key: str, data: Any, partition: int) -> None:
        """Persist JSON-serialisable stage state (in the table, changelogged to ``partition``)."""
        self._stage_changes[stage_table_key(stage, key)] = StageValue(stage, key, partition, data)

    def stage_delete(self, stage: str, key: str, partition: int) -> None:
        self._stage_changes[stage_table_key(stage, key)] = (key, partition)


@runtime_checkable
class Stage(Protocol):
    """A pluggable step of the worker's batch pipeline.

    Optional methods, called when present:

    - ``async def restore(self, entries: Mapping[str, Any], partitions: set[int]) -> None``:
      after the table was recovered (start, rebalance), with this stage's keyed state of the
      partitions this worker now owns;
    - ``async def tick(self, ctx: BatchContext) -> None``: every tick interval of wall-clock
      time, with a context that has no records (for timers: SLA deadlines, stalled SKUs);
    - ``async def run(self) -> None``: background work started with the worker and cancelled
      when it stops (e.g. following a topic every worker reads in full).
    """

    name: str

    async def process(self, ctx: BatchContext) -> None: ...


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
        self.influx = influx
        self.stages = list(stages)
        self.cell_of = cell_of
        self.owned = owned
        self.confirm_membership = confirm_membership
        self.clock = clock
        self.aggregates: dict[int, PartitionAggregates] = {}
        #: A replay's minutes (stream.replay) are kept apart: behind live traffic's window
        #: they would be final on arrival, and its in-flight gauge is not today's.
        self.replay_aggregates: dict[tuple[int, str], PartitionAggregates] = {}
        self.stats = PipelineStats()
        self._warroom_sent: dict[int, float] = {}
        self._sampled_at: dict[int, float] = {}
        self._warroom_pending: set[int] = set()
        self._swept: dict[int, float] = {}
        #: Stored orders by clock and hour of their newest event: what a sweep looks at.
        self.retention_index = RetentionIndex()
        #: Newest event time per (partition, replay id or None for live): the clock expiry
        #: is measured against, so a replay's orders age in the replay's own time.
        self._newest_ns: dict[tuple[int, str | None], int] = {}

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
            tick = getattr(stage, "tick", None)
            if tick is not None:
                await tick(ctx)
        await self._sink(ctx)
        return ctx

    def _context(self, now: datetime, records: Sequence[SourceRecord]) -> BatchContext:
        ctx = BatchContext(now, records, self.store, self.aggregates)
        ctx.fence = self.outbox.fence or _unfenced  # set on the outbox after the pipeline is built
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
            # A replay of history (stream.replay) is kept on the order and has its own clock.
            replay = replay_of(record.headers)
            if replay is not None and timeline_of_order(dict(order.extensions)) != replay:
                order = order.with_extension(REPLAY_EXTENSION, {"id": replay})
            clock = (record.partition, replay)
            self._newest_ns[clock] = max(self._newest_ns.get(clock, 0), time_ns)
            ctx.orders[order_id] = order
            ctx._publish.add(order_id)
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
        # Sequence numbers and snapshots of the orders to publish.
        for order_id in ctx._publish:
            o = ctx.orders[order_id]
            ctx.orders[order_id] = OrderState(o.order_id, o.partition, o.skus, o.last_event_ns, o.seq + 1, o.extensions)
        tombstones = self._sweep(ctx)

        # Aggregates: dirty minutes, final minutes leaving the window, and an in-flight
        # sample when the partition's event-time minute moved on or every sample interval.
        now = self.clock()
        # Only partitions owned now: after a revocation (until the next assignment rebuilds
        # them) the aggregates of revoked partitions are still in memory, and a tick would
        # write them over their new owner's.
        candidates = self.aggregates if not ctx.records else ctx.partitions & set(self.aggregates)
        agg_parts = sorted(p for p in candidates if self.owned(p))
        final_lines: list[str] = []
        agg_lines: list[str] = []
        sampled: list[int] = []
        for partition in agg_parts:
            agg = self.aggregates[partition]
            final_lines.extend(agg.expire())
            sample = (
                agg.sample_minute != agg.sampled_minute
                or now - self._sampled_at.get(partition, -1e18) >= self.config.inflight_sample_s
            )
            agg_lines.extend(agg.pending_lines(sample))
            if sample:
                sampled.append(partition)
        replays = sorted(
            k for k in self.replay_aggregates if (not ctx.records or k[0] in ctx.partitions) and self.owned(k[0])
        )
        replay_sampled: dict[tuple[int, str], bool] = {}
        for key in replays:  # a replay's minutes move with its own events only
            agg = self.replay_aggregates[key]
            final_lines.extend(agg.expire())
            replay_sampled[key] = agg.sample_minute != agg.sampled_minute
            agg_lines.extend(agg.pending_lines(replay_sampled[key]))

        # a + b. InfluxDB and the outputs, concurrently (independent of each other).
        out: list[tuple[OutRecord, int | None]] = []
        dlq_partitions = await self._count(self.topics.dlq) if ctx.dead_letters else 1
        for record, letter in ctx.dead_letters:
            out.append(
                (
                    OutRecord(
                        self.topics.dlq, encode_dead_letter(letter), record.key, record.partition % dlq_partitions
                    ),
                    record.partition,
                )
            )
        for order_id in ctx._publish:
            order = ctx.orders[order_id]
            out.append(
                (
                    OutRecord(self.topics.updates, orjson.dumps(order_snapshot(order)), order_id.encode()),
                    order.partition,
                )
            )
        out.extend(self._warroom(ctx))
        out.extend(ctx._emitted)
        # Outputs of a partition revoked meanwhile are dropped: its new owner replays them.
        # A worker that cannot confirm its membership (it was frozen past its session)
        # treats every partition as revoked: its successor may already have written.
        fenced = not await self._membership_confirmed()
        revoked = {p for p in ctx.partitions if fenced or not self.owned(p)} - ctx.dropped_partitions
        if revoked:
            log.warning(
                "partitions %s were revoked during the batch%s; leaving their records to the new owner",
                sorted(revoked),
                " (membership not confirmed)" if fenced else "",
            )
            self.stats.skipped_revoked += sum(1 for r in ctx.records if r.partition in revoked)

        # Ownership per partition, asked once per sink phase (not once per order): asking
        # builds the consumer's assignment set.
        owned: dict[int, bool] = {}

        def dropped(partition: int) -> bool:
            if fenced or partition in revoked:
                return True
            known = owned.get(partition)
            if known is None:
                known = owned[partition] = self.owned(partition)
            return not known

        # One write (fewer requests per batch): the points first, the open aggregates last.
        # A fenced worker writes nothing to InfluxDB: its minute aggregates (and stages'
        # minute lines) could overwrite its successor's. The outbox's fence is checked again
        # before every InfluxDB attempt (retries run for up to a minute); a fenced write or
        # send cancels the other and drops the batch.
        if fenced:
            final_lines, agg_lines, sampled, replays = [], [], [], []
        # A tick of a worker that owns none of its partitions (between a revocation and the
        # next assignment) writes no stage lines either: they are its old partitions'.
        idle = not ctx.records and not any(self.owned(p) for p in self.aggregates)
        points = [] if fenced or idle else ctx.lines + final_lines
        report, _ = await gather_cancelling(
            self.influx.write(points + agg_lines, fence=self.outbox.fence),
            self.outbox.send([r for r, p in out if not (dropped(p) if p is not None else fenced)]),
        )
        if not fenced and not any(f.start + len(f.lines) > len(points) for f in report.failed):
            for partition in agg_parts:
                self.aggregates[partition].mark_written(partition in sampled)
            for partition in sampled:
                self._sampled_at[partition] = now
            for key in replays:
                self.replay_aggregates[key].mark_written(replay_sampled[key])
        # Points InfluxDB did not take go to influx-dlq before the batch counts as done
        # (open aggregate minutes are not dead-lettered: they stay pending, see aggregates).
        dead_points: list[OutRecord] = []
        for failed in report.failed:
            lost = list(failed.lines[: max(0, len(points) - failed.start)])
            if not lost:
                continue
            self.stats.influx_dead_lettered_lines += len(lost)
            headers = tuple(influx_headers(failed.reason, failed.attempts, failed.error))
            partition = self._influx_dlq_partition(ctx) % await self._count(self.topics.influx_dlq)
            dead_points.extend(
                OutRecord(self.topics.influx_dlq, chunk, None, partition, headers) for chunk in chunk_lines(lost)
            )
            if failed.reason is InfluxFailure.REJECTED:
                log.error("dead-lettered %d rejected points to %s", len(lost), self.topics.influx_dlq)
        await self.outbox.send(dead_points)

        # c. changelog (membership checked again: the writes above may have been slow)
        if not fenced and not await self._membership_confirmed():
            fenced = True
            log.warning("membership not confirmed before the changelog write; leaving the batch to the new owner")
        owned.clear()  # the writes above awaited: a rebalance may have happened meanwhile
        ctx.dropped_partitions |= set(ctx.partitions) if fenced else revoked
        changelog: list[OutRecord] = []
        for order_id, order in ctx.orders.items():
            if not dropped(order.partition):
                changelog.append(
                    OutRecord(self.topics.changelog, encode_value(order), order_id.encode(), order.partition)
                )
        for table_key, change in ctx._stage_changes.items():
            partition = change.partition if isinstance(change, StageValue) else change[1]
            if not dropped(partition):
                value = encode_value(change) if isinstance(change, StageValue) else None
                changelog.append(OutRecord(self.topics.changelog, value, table_key.encode(), partition))
        for order_id, partition in tombstones:
            if not dropped(partition):
                changelog.append(OutRecord(self.topics.changelog, None, order_id.encode(), partition))
        # Exact end offsets: recovery reads the changelog up to them (see Outbox.send).
        await self.outbox.send(changelog, exact_end_offsets=True)

        # d. memory
        for order_id, order in ctx.orders.items():
            if not dropped(order.partition):
                self.store[order_id] = order
                self.retention_index.note(order_id, _clock_of(order), order.last_event_ns)
        for table_key, change in ctx._stage_changes.items():
            if dropped(change.partition if isinstance(change, StageValue) else change[1]):
                continue
            if isinstance(change, StageValue):
                self.store[table_key] = change
            else:
                self.store.pop(table_key, None)
        for order_id, partition in tombstones:
            if not dropped(partition):
                self.store.pop(order_id, None)
                self.retention_index.discard(order_id)
        self.stats.accepted += len(ctx.accepted)
        self.stats.duplicates += ctx.duplicates
        self.stats.dead_lettered += len(ctx.dead_letters)
        self.stats.updates += len(ctx._publish)
        self.stats.expired_orders += len(tombstones)

    async def _membership_confirmed(self) -> bool:
        return True if self.confirm_membership is None else await self.confirm_membership()

    async def _count(self, topic: str) -> int:
        return len(await self.outbox.partitions(topic))

    def _influx_dlq_partition(self, ctx: BatchContext) -> int:
        # Spread chunks over the topic's partitions by the batch's first source partition;
        # replay order does not matter (points are idempotent).
        return min(ctx.partitions) if ctx.partitions else 0

    def _warroom(self, ctx: BatchContext) -> list[tuple[OutRecord, int | None]]:
        self._warroom_pending |= {a.record.partition for a in ctx.accepted}
        now = self.clock()
        out: list[tuple[OutRecord, int | None]] = []
        for partition in sorted(self._warroom_pending):
            if now - self._warroom_sent.get(partition, -1e18) < self.config.warroom_interval_s:
                continue
            agg = self.aggregates.get(partition)
            if agg is None:
                continue
            self._warroom_sent[partition] = now
            self._warroom_pending.discard(partition)
            value = orjson.dumps(agg.snapshot())
            out.append((OutRecord(self.topics.warroom, value, f"partition-{partition}".encode(), None), partition))
        return out

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
                # A data-quality finding per open SKU (stream.data_quality).
                findings = abandoned_findings(gone.order, gone.watermark_ns)
                ctx.lines.extend(abandoned_line(f, gone.order, gone.partition) for f in findings)
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
            restore = getattr(stage, "restore", None)
            if restore is not None:
                entries = {
                    v.key: v.data for v in self.store.values() if isinstance(v, StageValue) and v.stage == stage.name
                }
                await restore(entries, set(partitions))
        log.info("state recovered: %d orders in partitions %s", len(orders), sorted(partitions))


def _clock_of(order: OrderState) -> Clock:
    """The clock an order ages by: its partition's live traffic, or its replay's."""
    replay = timeline_of_order(dict(order.extensions)) if REPLAY_EXTENSION in order.extensions else None
    return (order.partition, replay)


def records_from(events: Iterable[Any]) -> list[SourceRecord]:
    """Faust events as :class:`SourceRecord` s (raw key and value bytes, as received)."""
    out = []
    for event in events:
        message = event.message
        headers = message.headers or ()
        if isinstance(headers, Mapping):
            headers = headers.items()
        out.append(
            SourceRecord(
                message.topic,
                message.partition,
                message.offset,
                int(message.timestamp * 1000) if message.timestamp else None,
                message.key,
                message.value,
                tuple(headers),
            )
        )
    return out


__all__ = [
    "Accepted",
    "BatchContext",
    "Pipeline",
    "PipelineConfig",
    "PipelineStats",
    "SourceRecord",
    "Stage",
    "StageValue",
    "Topics",
    "decode_value",
    "encode_value",
    "records_from",
]
