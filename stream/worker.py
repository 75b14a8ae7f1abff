"""The Faust worker: app factory, the batch source and the resources it owns.

:func:`create_worker` builds

- a :class:`stream.kafka.batch_source.BatchSource` reading ``order-events`` with aiokafka
  ``getmany`` in its own consumer group (:func:`stream.kafka.batch_source.source_group`) and
  handing batches (up to N records, or T seconds after the first) to
  :class:`stream.pipeline.Pipeline`. Offsets are committed only after
  :meth:`~stream.pipeline.Pipeline.process` returned, which is after InfluxDB, the outputs
  and the changelog acknowledged: a committed offset never runs ahead of the sinks. A batch
  that fails unexpectedly is never committed and the worker exits at once (``os._exit``):
  crash-only, and the restarted worker replays the batch. Never a silent loss;
- the ``orders`` state: a plain dict (order id or stage key ->
  :class:`~stream.core.order_state.OrderState` / :class:`~stream.stage_api.StageValue`) that the
  pipeline keeps and changelogs itself, in record batches through its own producer
  (:mod:`stream.sinks.outbox`), to ``<app id>-orders-changelog``, partition = source partition,
  key = UTF-8 order id, value = :func:`stream.sinks.changelog.encode_value`. The source reads the
  changelog of the partitions it is assigned (see :mod:`stream.kafka.batch_source`);
- a Faust app for the rest: the pipeline's tick (a timer) and, with ``alerting``, the
  alerting agent. Faust no longer sees the source: a Faust event object per record cost
  more than the whole pipeline (issue #19);
- :class:`WorkerResources`: the outbox producers, the InfluxDB writer, the replayer of
  ``influx-dlq`` and the source, started before the app and stopped after it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import mode

from alerting.backoff import RetryPolicy
from config.client_auth import faust_credentials, influx_auth, kafka_auth
from config.settings import Settings
from stream.kafka import safe_commits
from stream.kafka.batch_source import BatchSource, source_group
from stream.pipeline import Pipeline, PipelineConfig, Topics
from stream.sinks.influx import INFLUX_RETRY, InfluxReplayer, InfluxWriter
from stream.sinks.line_protocol import CellFunction
from stream.sinks.local_snapshot import LocalSnapshots
from stream.sinks.outbox import Outbox
from stream.stage_api import BackgroundStage, InstallingStage, Stage
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

#: Exit code of a worker that stopped itself on an unexpected error inside a batch.
EXIT_FATAL = 70


def _exit_now(exc: BaseException) -> None:
    logging.shutdown()
    os._exit(EXIT_FATAL)


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
    influx_policy: RetryPolicy = INFLUX_RETRY
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
        return cls(batch_size=settings.worker_batch_size, batch_window_s=settings.worker_batch_window_s, **overrides)


class WorkerResources(mode.Service):
    """The outbox producers, the InfluxDB writer, the influx-dlq replayer and the source."""

    def __init__(self, settings: Settings, options: WorkerOptions, **kwargs: Any) -> None:
        self.settings = settings
        self.options = options
        security = kafka_auth(settings)
        self.outbox = Outbox(settings.kafka_bootstrap, client_id=f"{settings.faust_app_id}-outbox", security=security)
        #: The pipeline's own producer: fenced by the source's membership lease (set by
        #: :func:`create_worker`); the alerting agent's sends go through :attr:`outbox`.
        self.pipeline_outbox = Outbox(
            settings.kafka_bootstrap, client_id=f"{settings.faust_app_id}-pipeline-outbox", security=security
        )
        self.influx = InfluxWriter(
            settings.influx_url,
            settings.influx_db,
            timeout_s=settings.influx_timeout_s,
            auth=influx_auth(settings),
            policy=options.influx_policy,
        )
        replay_writer = InfluxWriter(
            settings.influx_url,
            settings.influx_db,
            timeout_s=settings.influx_timeout_s,
            auth=influx_auth(settings),
            policy=replace(INFLUX_RETRY, attempts=1, later_base_delay=0.0, later_max_delay=0.0),
        )
        self.replayer = InfluxReplayer(
            replay_writer,
            settings.kafka_bootstrap,
            settings.topic(INFLUX_DLQ),
            f"{settings.faust_app_id}-influx-replayer",
            max_backoff_s=options.replay_max_backoff_s,
            session_timeout_ms=int(options.session_timeout_s * 1000),
            security=security,
        )
        #: Set by :func:`create_worker`; its statistics are logged when the worker stops.
        self.pipeline: Pipeline | None = None
        #: The pipeline's input, set by :func:`create_worker`; started after the producers
        #: and stopped before them (its last batch still writes).
        self.source: BatchSource | None = None
        #: Background work of the stages (their optional ``run``), set by :func:`create_worker`.
        self.background: list[Callable[[], Awaitable[None]]] = []
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        await self.outbox.start()
        await self.pipeline_outbox.start()
        if self.options.replay_influx_dlq:
            self.add_future(self.replayer.run())
        for run in self.background:
            self.add_future(run())
        if self.source is not None:
            await self.source.start()

    async def on_stop(self) -> None:
        if self.source is not None:
            await self.source.stop()
        if self.pipeline is not None:
            log.info("pipeline stats: %s", self.pipeline.stats)
        self.replayer.stop()
        await self.pipeline_outbox.stop()
        await self.outbox.stop()
        await self.influx.aclose()
        await self.replayer.writer.aclose()


@dataclass
class WorkerRuntime:
    app: faust.App
    pipeline: Pipeline
    resources: WorkerResources
    #: The pipeline's state (order id or stage key -> value) of the partitions it owns.
    store: dict[str, Any]

    def run(self, loglevel: str = "info") -> int:
        """Run until SIGTERM/SIGINT; the exit code."""
        # Allocation-heavy (new state records per event, few cycles): collect the young
        # generation less often; full collections over the state stay rare.
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
    """The Faust app and everything it runs. Topics must exist (``stream.kafka.admin.ensure_topics``)."""
    options = options or WorkerOptions.from_settings(settings)
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
        web_enabled=options.web_port is not None,
        web_port=options.web_port or 6066,
        worker_redirect_stdouts=False,
        # Faust keeps its own small files (and RocksDB, if configured) here, not in the cwd.
        datadir=str(faust_dir / "{conf.name}"),
    )
    # Before anything creates the transport: the agents' commits (alerting) by frontier.
    safe_commits.install(app)
    resources = WorkerResources(settings, options)
    # A stage's optional hooks: background work for the worker's lifetime, and agents,
    # tables and timers of its own on the app.
    resources.background = [stage.run for stage in stages if isinstance(stage, BackgroundStage)]
    for stage in stages:
        if isinstance(stage, InstallingStage):
            stage.install(app, resources.outbox, options.on_fatal)
    config = PipelineConfig(
        topics=pipeline_topics(settings),
        window_minutes=options.aggregate_window_minutes,
        closed_retention=options.closed_retention,
        open_retention=options.open_retention,
        warroom_interval_s=options.warroom_interval_s,
    )
    store: dict[str, Any] = {}
    lock = asyncio.Lock()
    holder: list[BatchSource] = []

    def owned(partition: int) -> bool:
        return holder[0].is_owned(partition)

    async def confirm_membership() -> bool:
        return await holder[0].confirm_membership()

    pipeline = Pipeline(
        config,
        store,
        resources.pipeline_outbox,
        resources.influx,
        stages,
        cell_of=cell_of,
        owned=owned,
        confirm_membership=confirm_membership,
    )
    source = BatchSource(
        bootstrap=settings.kafka_bootstrap,
        topic=settings.topic(ORDER_EVENTS),
        group=source_group(settings),
        changelog=changelog_topic(settings, TABLE),
        pipeline=pipeline,
        store=store,
        lock=lock,
        batch_size=options.batch_size,
        window_s=options.batch_window_s,
        session_timeout_s=session_s,
        on_fatal=options.on_fatal,
        security=kafka_auth(settings),
        client_id=f"{settings.faust_app_id}-source",
        snapshots=LocalSnapshots((settings.data_dir / "state").resolve(), changelog_topic(settings, TABLE)),
    )
    holder.append(source)
    resources.pipeline_outbox.fence = source.fence
    resources.pipeline = pipeline
    resources.source = source

    async def tick() -> None:
        try:
            await source.tick(lambda: pipeline.tick(datetime.now(UTC)))
        except Exception as exc:
            log.critical("tick failed; stopping", exc_info=exc)
            options.on_fatal(exc)
            raise

    app.timer(options.tick_interval_s)(tick)
    if options.alerting:
        from stream.stages.wiring import install_alerting  # the stages package imports this module's peers

        install_alerting(
            app, settings, resources.outbox, resources.influx, options.on_fatal, tick_s=options.alert_tick_s
        )
    return WorkerRuntime(app, pipeline, resources, store)
