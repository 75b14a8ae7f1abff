"""The Faust worker: app factory, the batch agent and the resources it owns.

:func:`create_worker` builds a Faust app with

- the source topic ``order-events`` read as raw bytes (``value_serializer="raw"``), one
  agent (``concurrency=1``) iterating a ``noack()`` stream and handing batches (up to N
  events, or T seconds after the first) to :class:`stream.pipeline.Pipeline` through
  :class:`EventBatcher`, which keeps one batch in its sinks while the next is collected;
- the ``orders`` table (memory store, changelog co-partitioned with the source,
  ``partitions=settings.partitions``) holding :class:`~stream.lifecycle.OrderState` and
  stage state. The pipeline writes ``table.data[key]`` directly and produces the changelog
  entries itself, in record batches through its own producer (:mod:`stream.outbox`), to the
  table's changelog topic, partition = source partition, key = UTF-8 order id (the table's
  ``raw`` key serializer) and value = :func:`stream.pipeline.encode_value` (the table's
  value codec, registered below), so Faust's own recovery rebuilds the table after a
  crash or rebalance. Writing through ``table[k] = v`` would cost a changelog send per event
  (~1,500 events/s here); this way the table costs one record per changed order per batch;
- :class:`WorkerResources`: the outbox producer, the InfluxDB writer and the replayer of
  ``influx-dlq``, started before the app and stopped after it.

Offsets: each batch first passes the consumer's cursors (:mod:`stream.partition_cursor`):
per source partition, only the records that continue the processed prefix in offset order are
processed; re-deliveries are skipped, and records Faust lost between fetch and agent are read
again. Offsets are acknowledged (manually: ``noack()`` stream) only after
:meth:`~stream.pipeline.Pipeline.process` returned, which is after InfluxDB, the outputs and
the changelog acknowledged (see :mod:`stream.pipeline`), and the commit is the cursor
(:mod:`stream.safe_commits`). So a committed offset never runs ahead of the sinks. (Faust's
``take_events`` would do the same ordering, but it acknowledges a batch in a ``finally``
even when the body failed, and it stops feeding while the body waits on I/O.) A batch that
fails is never acknowledged and the worker exits at once (``os._exit``): crash-only, and
the restarted worker replays the batch. Never a silent loss.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import faust
import mode
from faust.types import TP
from faust.serializers import codecs

from config.client_auth import faust_credentials, influx_auth, kafka_auth
from config.settings import Settings
from stream import safe_commits
from stream.influx_writer import InfluxReplayer, InfluxWriter, RetryPolicy
from stream.line_protocol import CellFunction
from stream.log_probe import LogProbeError, first_offset_from
from stream.outbox import Outbox
from stream.partition_cursor import Admission
from stream.pipeline import Pipeline, PipelineConfig, Stage, Topics, decode_value, encode_value, records_from
from stream.topics import (
    INFLUX_DLQ,
    ORDER_EVENTS,
    ORDER_EVENTS_DLQ,
    ORDER_UPDATES,
    TABLES,
    WARROOM_UPDATES,
    changelog_topic,
)

log = logging.getLogger(__name__)

TABLE = "orders"
assert TABLE in TABLES
AGENT_NAME = "orderradar.pipeline"
STATE_CODEC = "orderradar_state"

#: Exit code of a worker that stopped itself on an unexpected error inside a batch.
EXIT_FATAL = 70


class StateCodec(codecs.Codec):
    """The ``orders`` table's value codec: :func:`encode_value` / :func:`decode_value`."""

    def _dumps(self, obj: Any) -> bytes:
        return encode_value(obj)

    def _loads(self, s: bytes) -> Any:
        return decode_value(s)


def _exit_now(exc: BaseException) -> None:
    logging.shutdown()
    os._exit(EXIT_FATAL)


class EventBatcher:
    """Batches a stream's events for the pipeline while Faust keeps feeding.

    Faust's ``take_events`` stops feeding its buffer while the agent body runs, and the
    body here mostly waits on I/O (InfluxDB and broker acknowledgements), so the worker
    would alternate between filling and waiting. This batcher keeps one batch in its sinks
    (a task) while the agent goes on collecting the next one; batches run strictly one
    after the other, in order. A batch starts when the buffer holds ``max_size`` events,
    or ``window_s`` after its first event. The stream is a ``noack()`` stream: a batch's
    offsets are acknowledged only after :meth:`Pipeline.process` returned, so a committed
    offset never runs ahead of InfluxDB, the outputs or the changelog. A failed batch is
    never acknowledged: the worker stops (``on_fatal``) and its successor replays it.
    """

    def __init__(self, process: Callable[[list[Any]], Awaitable[None]], ack: Callable[[Any], Awaitable[object]],
                 max_size: int, window_s: float, on_fatal: Callable[[BaseException], None]) -> None:
        self._process = process
        self._ack = ack
        self.max_size = max_size
        self.window_s = window_s
        self._on_fatal = on_fatal
        self._buffer: list[Any] = []
        self._first_at = 0.0
        self._in_flight: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()
        self._pending = asyncio.Event()

    async def add(self, event: Any) -> None:
        self._buffer.append(event)
        if len(self._buffer) == 1:
            self._first_at = time.monotonic()
            self._pending.set()
        if len(self._buffer) >= self.max_size:
            await self.flush()  # waits while the previous batch is in its sinks: backpressure

    async def flush(self, only_if_due: bool = False) -> None:
        """Start a batch of what is buffered, after the batch in flight finished.

        ``only_if_due`` (the timer): if a batch was in flight, the buffer gets another
        window from its end unless it is full. Under load batches thus grow to about
        (sink time + window) of input instead of shrinking to the sink time: each batch
        has a fixed cost (a few requests), so bigger batches cost less per event.
        """
        async with self._lock:
            if self._in_flight is not None:
                await self._in_flight
                self._in_flight = None
                if only_if_due and len(self._buffer) < self.max_size:
                    self._first_at = max(self._first_at, time.monotonic())
                    return
            if not self._buffer:
                return
            batch, self._buffer = self._buffer, []
            self._pending.clear()
            self._in_flight = asyncio.ensure_future(self._run(batch))

    async def drain(self) -> None:
        """Process everything buffered and wait for it."""
        await self.flush()
        async with self._lock:
            if self._in_flight is not None:
                await self._in_flight
                self._in_flight = None

    async def _run(self, batch: list[Any]) -> None:
        try:
            await self._process(batch)
        except asyncio.CancelledError:
            log.warning("a batch of %d events was interrupted; it stays unacknowledged and is replayed", len(batch))
            raise
        except BaseException as exc:  # noqa: B036 - never acknowledge a failed batch
            log.critical("batch of %d events failed; stopping without acknowledging it", len(batch), exc_info=exc)
            self._on_fatal(exc)
            raise
        for event in batch:
            await self._ack(event)

    async def run_timer(self) -> None:
        """Start a partial batch ``window_s`` after its first event (runs until cancelled)."""
        while True:
            await self._pending.wait()
            delay = self._first_at + self.window_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # the batch window, not a wait for a condition
            if self._buffer and time.monotonic() - self._first_at >= self.window_s:
                await self.flush(only_if_due=True)


def admit_batch(consumer: safe_commits.SafeCommitConsumer, topic: str, events: Sequence[Any]
                ) -> tuple[list[Any], dict[int, tuple[Admission, int]]]:
    """The events of a batch the pipeline may process (in delivery order), and each
    partition's admission with its cursor epoch (see :mod:`stream.partition_cursor`)."""
    positions: dict[int, list[int]] = {}
    for index, event in enumerate(events):
        positions.setdefault(event.message.partition, []).append(index)
    keep: set[int] = set()
    admitted: dict[int, tuple[Admission, int]] = {}
    for partition, indexes in positions.items():
        admission, epoch = consumer.admit(TP(topic, partition), [events[i].message.offset for i in indexes])
        if admission is not None:
            keep.update(indexes[j] for j in admission.take)
            admitted[partition] = (admission, epoch)
    return [event for index, event in enumerate(events) if index in keep], admitted


def log_probe(settings: Settings) -> safe_commits.LogProbe:
    security = kafka_auth(settings)

    async def probe(tp: TP, offset: int) -> int | None:
        try:
            return await first_offset_from(settings.kafka_bootstrap, tp.topic, tp.partition, offset,
                                           security=security)
        except LogProbeError as exc:
            # Without the answer the partition is still read again from the cursor; a hole
            # there is found by a later re-read.
            log.warning("could not check for a hole in the log: %s", exc)
            return None

    return probe


@dataclass(frozen=True)
class WorkerOptions:
    batch_size: int = 2000
    batch_window_s: float = 0.2
    #: Consumer group session timeout. The embedded broker completes a join after about
    #: half of it, and a restarted worker waits for its dead predecessor's session to end.
    session_timeout_s: float = 10.0
    standby_replicas: int = 0
    replay_influx_dlq: bool = True
    tick_interval_s: float = 1.0
    aggregate_window_minutes: int = 120
    closed_retention: timedelta = timedelta(days=7)
    open_retention: timedelta = timedelta(days=90)
    warroom_interval_s: float = 1.0
    influx_policy: RetryPolicy = RetryPolicy()
    #: Longest pause between attempts of the influx-dlq replayer while InfluxDB is down.
    replay_max_backoff_s: float = 10.0
    #: Port of Faust's web server; ``None`` disables it.
    web_port: int | None = None
    #: Run the alerting agent (``stream.stages.wiring.install_alerting``) in this app.
    alerting: bool = False
    #: Wall-clock period of the alert engine's tick (escalation steps are due on it).
    alert_tick_s: float = 15.0
    #: Called with the exception when a batch fails unexpectedly (default: exit at once).
    on_fatal: Callable[[BaseException], None] = field(default=_exit_now)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WorkerOptions:
        return cls(batch_size=settings.worker_batch_size, batch_window_s=settings.worker_batch_window_s,
                   **overrides)


class WorkerResources(mode.Service):
    """The outbox producer, the InfluxDB writer and the influx-dlq replayer."""

    def __init__(self, settings: Settings, options: WorkerOptions, **kwargs: Any) -> None:
        self.settings = settings
        self.options = options
        security = kafka_auth(settings)
        self.outbox = Outbox(settings.kafka_bootstrap, client_id=f"{settings.faust_app_id}-outbox", security=security)
        self.influx = InfluxWriter(settings.influx_url, settings.influx_db, timeout_s=settings.influx_timeout_s,
                                   auth=influx_auth(settings), policy=options.influx_policy)
        replay_writer = InfluxWriter(settings.influx_url, settings.influx_db, timeout_s=settings.influx_timeout_s,
                                     auth=influx_auth(settings),
                                     policy=RetryPolicy(max_attempts=1, cooldown_s=0.0, max_cooldown_s=0.0))
        self.replayer = InfluxReplayer(
            replay_writer, settings.kafka_bootstrap, settings.topic(INFLUX_DLQ),
            f"{settings.faust_app_id}-influx-replayer",
            max_backoff_s=options.replay_max_backoff_s,
            session_timeout_ms=int(options.session_timeout_s * 1000),
            security=security,
        )
        #: Set by :func:`create_worker`; its statistics are logged when the worker stops.
        self.pipeline: Pipeline | None = None
        #: The consumer's :class:`stream.safe_commits.CursorStats`, set by :func:`create_worker`.
        self.cursor_stats: Callable[[], object] | None = None
        #: Background work of the stages (their optional ``run``), set by :func:`create_worker`.
        self.background: list[Callable[[], Awaitable[None]]] = []
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        await self.outbox.start()
        if self.options.replay_influx_dlq:
            self.add_future(self.replayer.run())
        for run in self.background:
            self.add_future(run())

    async def on_stop(self) -> None:
        if self.pipeline is not None:
            log.info("pipeline stats: %s", self.pipeline.stats)
        if self.cursor_stats is not None:
            log.info("source cursors: %s", self.cursor_stats())
        self.replayer.stop()
        await self.outbox.stop()
        await self.influx.aclose()
        await self.replayer.writer.aclose()


@dataclass
class WorkerRuntime:
    app: faust.App
    pipeline: Pipeline
    resources: WorkerResources
    table: Any

    def run(self, loglevel: str = "info") -> int:
        """Run until SIGTERM/SIGINT; the exit code."""
        # Allocation-heavy (new state records per event, few cycles): collect the young
        # generation less often; full collections over the table stay rare.
        gc.set_threshold(50_000, 20, 20)
        worker = faust.Worker(self.app, self.resources, loglevel=loglevel, redirect_stdouts=False)
        # httpx narrates every request at INFO.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0


def pipeline_topics(settings: Settings) -> Topics:
    return Topics(
        dlq=settings.topic(ORDER_EVENTS_DLQ),
        updates=settings.topic(ORDER_UPDATES),
        warroom=settings.topic(WARROOM_UPDATES),
        influx_dlq=settings.topic(INFLUX_DLQ),
        changelog=changelog_topic(settings, TABLE),
    )


def create_worker(
    settings: Settings,
    options: WorkerOptions | None = None,
    stages: Sequence[Stage] = (),
    cell_of: CellFunction | None = None,
) -> WorkerRuntime:
    """The Faust app and everything it runs. Topics must exist (``stream.topics.ensure_topics``)."""
    options = options or WorkerOptions.from_settings(settings)
    codecs.register(STATE_CODEC, StateCodec())
    session_s = options.session_timeout_s
    faust_dir = (settings.data_dir / "faust").resolve()
    faust_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = faust.App(
        settings.faust_app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=faust_credentials(settings),
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # Every topic is pre-created with its partition count: the embedded broker would
        # auto-create a missing one with 4 partitions and break co-partitioning.
        topic_allow_declare=False,
        topic_disable_leader=False,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        table_standby_replicas=options.standby_replicas,
        broker_session_timeout=session_s,
        broker_heartbeat_interval=max(1.0, session_s / 4),
        broker_rebalance_timeout=max(30.0, session_s * 3),
        stream_buffer_maxsize=max(4096, 2 * options.batch_size),
        web_enabled=options.web_port is not None,
        web_port=options.web_port or 6066,
        worker_redirect_stdouts=False,
        # Faust keeps its own small files (and RocksDB, if configured) here, not in the cwd.
        datadir=str(faust_dir / "{conf.name}"),
    )
    # Before app.topic: Faust creates the transport lazily.
    safe_commits.install(app, cursor_topics=[settings.topic(ORDER_EVENTS)], probe=log_probe(settings))
    source = app.topic(
        settings.topic(ORDER_EVENTS),
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        partitions=settings.partitions,
    )
    # The changelog topic is given explicitly for its serializers: keys are raw UTF-8
    # order ids (str in the table), values are decoded by the state codec.
    changelog = app.topic(
        changelog_topic(settings, TABLE),
        key_type=str, key_serializer="raw", value_serializer=STATE_CODEC,
        partitions=settings.partitions, compacting=True, internal=True, maxsize=131_072, allow_empty=True,
        acks=False,  # like Faust's own changelogs: recovery reads them, nothing acknowledges
    )
    table = app.Table(TABLE, partitions=settings.partitions, key_type=str, changelog_topic=changelog)
    resources = WorkerResources(settings, options)
    # A stage's optional ``run``: background work for the worker's lifetime.
    resources.background = [run for run in (getattr(stage, "run", None) for stage in stages) if callable(run)]
    source_name = source.get_topic_name()

    def source_consumer() -> safe_commits.SafeCommitConsumer:
        consumer = app.consumer  # created lazily by Faust, on the worker's loop
        assert isinstance(consumer, safe_commits.SafeCommitConsumer)
        return consumer

    def owned(partition: int) -> bool:
        return TP(source_name, partition) in source_consumer().assignment()

    config = PipelineConfig(
        topics=pipeline_topics(settings),
        window_minutes=options.aggregate_window_minutes,
        closed_retention=options.closed_retention,
        open_retention=options.open_retention,
        warroom_interval_s=options.warroom_interval_s,
    )
    # The memory store's own dict: what Faust's recovery fills, without the Store's
    # Python-level mapping layer on every lookup (two per event).
    store = getattr(table.data, "data", None)
    assert isinstance(store, dict), "the pipeline expects Faust's memory:// store"
    async def confirm_membership() -> bool:
        return await source_consumer().confirm_membership(timeout_s=3 * session_s)

    resources.cursor_stats = lambda: source_consumer().cursor_stats
    pipeline = Pipeline(config, store, resources.outbox, resources.influx, stages,
                        cell_of=cell_of, owned=owned, confirm_membership=confirm_membership)
    resources.pipeline = pipeline
    lock = asyncio.Lock()

    @table.on_recover
    async def on_recover() -> None:
        partitions = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == source_name}
        async with lock:
            await pipeline.recovered(partitions)

    async def process(events: list[Any]) -> None:
        consumer = source_consumer()
        taken, admitted = admit_batch(consumer, source_name, events)
        if taken:
            async with lock:
                ctx = await pipeline.process(records_from(taken), datetime.now(timezone.utc))
            for partition, (admission, epoch) in admitted.items():
                tp = TP(source_name, partition)
                if partition in ctx.dropped_partitions:
                    consumer.not_processed(tp)  # acknowledged below, but read again
                else:
                    consumer.processed(tp, admission.next_offset, epoch)
        await consumer.reread_pending()

    async def run_batches(stream: Any) -> None:
        manual = stream.noack()  # offsets are acknowledged by the batcher, after the sinks
        batcher = EventBatcher(process, manual.ack, options.batch_size, options.batch_window_s, options.on_fatal)
        timer = asyncio.ensure_future(batcher.run_timer())
        try:
            async for event in manual.events():
                await batcher.add(event)
        finally:
            timer.cancel()

    app.agent(source, name=AGENT_NAME, concurrency=1)(run_batches)

    async def tick() -> None:
        try:
            async with lock:
                await pipeline.tick(datetime.now(timezone.utc))
            await source_consumer().reread_pending(from_tick=True)  # also when no batch comes
        except Exception as exc:
            log.critical("tick failed; stopping", exc_info=exc)
            options.on_fatal(exc)
            raise

    app.timer(options.tick_interval_s)(tick)
    if options.alerting:
        from stream.stages.wiring import install_alerting  # the stages package imports this module's peers

        install_alerting(app, settings, resources.outbox, resources.influx, options.on_fatal,
                         tick_s=options.alert_tick_s)
    return WorkerRuntime(app, pipeline, resources, table)
