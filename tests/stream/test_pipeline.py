"""The batch pipeline in-process (no Faust) against the real broker and InfluxDB:
outputs, the stage API, revoked partitions, expiry, InfluxDB down and the replayer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from stream_eventgen import Record, generate
from stream_harness import count_points, read_topic

from config.settings import Settings
from orderradar.devstack.process import free_port
from orderradar.devstack.waiting import async_wait_until
from stream.core.dlq import InfluxFailure, influx_reason
from stream.core.order_state import OrderState
from stream.pipeline import Pipeline, PipelineConfig
from stream.sinks.changelog import decode_value
from stream.sinks.influx import INFLUX_RETRY, InfluxReplayer, InfluxWriter
from stream.sinks.outbox import Outbox, OutRecord
from stream.stage_api import BatchContext, SourceRecord, StageValue
from stream.topics import INFLUX_DLQ, ORDER_UPDATES, WARROOM_UPDATES
from stream.worker import pipeline_topics

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def source_records(records: list[Record], partitions: int) -> list[SourceRecord]:
    parts = list(range(partitions))
    partitioner = DefaultPartitioner()
    return [
        SourceRecord("order-events", partitioner(r.key, parts, parts) if r.key else 0, i, None, r.key, r.value)
        for i, r in enumerate(records)
    ]


class RecordingStage:
    """A stage using every hook of the API."""

    name = "probe"

    def __init__(self, topic: str = "") -> None:
        self.topic = topic
        self.seen = 0
        self.restored: dict[str, Any] = {}
        self.ticks = 0

    async def process(self, ctx: BatchContext) -> None:
        for partition, items in ctx.accepted_by_partition().items():
            self.seen += len(items)
            total = (ctx.stage_get(self.name, f"count-{partition}") or 0) + len(items)
            ctx.stage_put(self.name, f"count-{partition}", total, partition)
        first = ctx.accepted[0].event.order_id
        order = ctx.order(first)
        assert order is not None
        ctx.update_order(order.with_extension(self.name, {"flag": True}))
        ctx.emit(self.topic, orjson.dumps({"seen": self.seen}), b"probe")
        ctx.lines.append(f"probe,stage=probe seen={self.seen}i {1_700_000_000_000_000_000 + self.seen}")

    async def restore(self, entries: Mapping[str, Any], partitions: set[int]) -> None:
        self.restored = dict(entries)

    async def tick(self, ctx: BatchContext) -> None:
        self.ticks += 1


async def make_pipeline(
    settings: Settings,
    stages: list[Any] = [],  # noqa: B006 - never mutated, only passed on
    influx_url: str | None = None,
    **config: Any,
) -> Pipeline:
    outbox = Outbox(settings.kafka_bootstrap)
    await outbox.start()
    influx = InfluxWriter(
        influx_url or settings.influx_url,
        settings.influx_db,
        policy=replace(INFLUX_RETRY, attempts=2, base_delay=0.01, later_base_delay=30.0),
    )
    return Pipeline(PipelineConfig(pipeline_topics(settings), **config), {}, outbox, influx, stages)


async def close(pipeline: Pipeline) -> None:
    await pipeline.outbox.stop()
    await pipeline.influx.aclose()


def changelog_state(settings: Settings) -> dict[str, Any]:
    final: dict[str, Any] = {}
    for record in sorted(
        asyncio.run(read_topic(settings, pipeline_topics(settings).changelog)), key=lambda r: (r.partition, r.offset)
    ):
        key = record.key.decode()
        if record.value is None:
            final.pop(key, None)
        else:
            final[key] = decode_value(record.value)
    return final


def test_outputs_of_a_batch_and_the_stage_api(stack_settings: Settings) -> None:
    records = generate(seed=21, total=3000)
    sources = source_records(records, stack_settings.partitions)
    stage = RecordingStage(stack_settings.topic(WARROOM_UPDATES))

    async def scenario() -> Pipeline:
        pipeline = await make_pipeline(stack_settings, [stage])
        for i in range(0, len(sources), 1000):
            await pipeline.process(sources[i : i + 1000], NOW)
        await pipeline.tick(NOW)
        await close(pipeline)
        return pipeline

    pipeline = asyncio.run(scenario())
    valid = {r.event.event_id for r in records if r.event is not None}
    assert pipeline.stats.accepted == len(valid) == stage.seen
    assert pipeline.stats.dead_lettered == sum(r.kind == "invalid" for r in records)
    assert pipeline.stats.duplicates == sum(r.kind == "duplicate" for r in records)
    assert count_points(stack_settings) == len(valid)
    assert count_points(stack_settings, "probe", "seen") == 3
    assert count_points(stack_settings, "throughput", "count") > 0
    assert count_points(stack_settings, "inflight", "count") > 0
    assert stage.ticks == 1

    state = changelog_state(stack_settings)
    stage_entries = {v.key: v.data for v in state.values() if isinstance(v, StageValue)}
    assert sum(stage_entries.values()) == len(valid)
    orders = [v for v in state.values() if isinstance(v, OrderState)]
    assert any(o.extensions.get("probe") == {"flag": True} for o in orders)
    assert pipeline.store == state  # memory and changelog agree

    updates = asyncio.run(read_topic(stack_settings, stack_settings.topic(ORDER_UPDATES)))
    assert {orjson.loads(r.value)["order_id"] for r in updates} == {o.order_id for o in orders}
    warroom = asyncio.run(read_topic(stack_settings, stack_settings.topic(WARROOM_UPDATES)))
    snapshots = [orjson.loads(r.value) for r in warroom if r.key and r.key.startswith(b"partition-")]
    assert {s["partition"] for s in snapshots} == set(range(stack_settings.partitions))
    assert [orjson.loads(r.value)["seen"] for r in warroom if r.key == b"probe"][-1] == len(valid)

    # A fresh pipeline over the recovered table: aggregates rebuilt, stage state handed back.
    async def recover() -> Pipeline:
        fresh_stage = RecordingStage()
        fresh = await make_pipeline(stack_settings, [fresh_stage])
        fresh.store.update(state)
        await fresh.recovered({0, 1, 2, 3})
        await close(fresh)
        assert fresh_stage.restored and all(k.endswith(("-0", "-1", "-2", "-3")) for k in fresh_stage.restored)
        return fresh

    fresh = asyncio.run(recover())
    assert set(fresh.aggregates) == {0, 1, 2, 3}
    assert all(v.partition in {0, 1, 2, 3} for v in fresh.store.values())
    for p in range(4):
        assert fresh.aggregates[p].inflight == {k: v for k, v in pipeline.aggregates[p].inflight.items() if v}


def test_outputs_of_revoked_partitions_are_left_to_the_new_owner(stack_settings: Settings) -> None:
    sources = source_records(generate(seed=22, total=800), stack_settings.partitions)

    async def scenario() -> Pipeline:
        pipeline = await make_pipeline(stack_settings)
        pipeline.owned = lambda p: p != 1
        await pipeline.process(sources, NOW)
        await close(pipeline)
        return pipeline

    pipeline = asyncio.run(scenario())
    revoked = sum(1 for s in sources if s.partition == 1)
    assert revoked and pipeline.stats.skipped_revoked == revoked
    state = changelog_state(stack_settings)
    assert state and all(v.partition != 1 for v in state.values())
    assert all(v.partition != 1 for v in pipeline.store.values())


async def process_confirming(
    settings: Settings, sources: list[SourceRecord], confirm: Callable[[], Awaitable[bool]]
) -> tuple[Pipeline, BatchContext]:
    """One batch through a pipeline whose membership checks answer with ``confirm``."""
    pipeline = await make_pipeline(settings)
    pipeline.confirm_membership = confirm
    ctx = await pipeline.process(sources, NOW)
    await close(pipeline)
    return pipeline, ctx


def test_a_worker_that_cannot_confirm_its_membership_writes_no_state(stack_settings: Settings) -> None:
    # The zombie case: the first check (before the sinks) passes, then the worker is
    # frozen past its session; the second check (before the changelog) fails.
    sources = source_records(generate(seed=23, total=600), stack_settings.partitions)
    answers = [True, False]

    async def confirm() -> bool:
        return answers.pop(0)

    pipeline, ctx = asyncio.run(process_confirming(stack_settings, sources, confirm))
    assert answers == []  # both checks ran
    assert pipeline.stats.accepted > 0
    assert changelog_state(stack_settings) == {}
    assert pipeline.store == {}
    # every source partition reported as dropped: the worker must not commit them
    assert ctx.dropped_partitions == {s.partition for s in sources}
    # the points went out before the second check (idempotent: the successor rewrites them)
    assert count_points(stack_settings) == pipeline.stats.accepted


def test_a_fenced_batch_writes_nothing_to_influx(stack_settings: Settings) -> None:
    sources = source_records(generate(seed=24, total=400), stack_settings.partitions)

    async def never() -> bool:
        return False

    pipeline, ctx = asyncio.run(process_confirming(stack_settings, sources, never))
    assert ctx.dropped_partitions == {s.partition for s in sources}
    assert pipeline.stats.skipped_revoked == len(sources)
    assert pipeline.stats.accepted > 0
    # minute aggregates (and stages' minute lines) of a zombie could overwrite its successor's
    assert count_points(stack_settings) == 0
    assert count_points(stack_settings, "throughput", "count") == 0
    assert changelog_state(stack_settings) == {}
    assert asyncio.run(read_topic(stack_settings, stack_settings.topic(ORDER_UPDATES))) == []


def sweep_in_two_batches(
    settings: Settings, seed: int, total: int, split: int, **retention: Any
) -> tuple[Pipeline, BatchContext, dict[str, Any]]:
    """``total`` generated records through a pipeline in two batches (at ``split``), each
    followed by a retention sweep: (the pipeline, the last batch, the store after the first)."""
    sources = source_records(generate(seed=seed, total=total), settings.partitions)
    ticks = iter(range(10**6))
    before: dict[str, Any] = {}

    async def scenario() -> tuple[Pipeline, BatchContext]:
        pipeline = await make_pipeline(settings, sweep_interval_s=1.0, **retention)
        pipeline.clock = lambda: float(next(ticks))  # every batch is a sweep later than the last
        await pipeline.process(sources[:split], NOW)
        before.update(pipeline.store)
        last = await pipeline.process(sources[split:], NOW)
        await close(pipeline)
        return pipeline, last

    pipeline, last = asyncio.run(scenario())
    return pipeline, last, before


def test_expired_orders_are_tombstoned(stack_settings: Settings) -> None:
    pipeline, last, before = sweep_in_two_batches(
        stack_settings, 23, 1500, 1000, closed_retention=timedelta(minutes=30)
    )
    forgotten = set(before) - set(pipeline.store)
    assert forgotten and pipeline.stats.expired_orders == len(forgotten)
    limit = 30 * 60 * 10**9
    for order_id in forgotten:
        order = before[order_id]
        assert order.closed and pipeline.aggregates[order.partition].watermark_ns - order.last_event_ns > limit
    # The rest: open, recent, or changed by the last batch (swept next time).
    for order in pipeline.store.values():
        quiet = pipeline.aggregates[order.partition].watermark_ns - order.last_event_ns > limit
        assert not (order.closed and quiet) or order.order_id in last.orders
    assert set(changelog_state(stack_settings)) == set(pipeline.store)  # tombstones in the changelog


def test_influx_down_points_go_to_influx_dlq_and_the_replayer_writes_them(stack_settings: Settings) -> None:
    records = generate(seed=24, total=1200)
    sources = source_records(records, stack_settings.partitions)
    dead_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    async def scenario() -> Pipeline:
        pipeline = await make_pipeline(stack_settings, influx_url=dead_url)
        await pipeline.process(sources[:600], NOW)
        await pipeline.process(sources[600:], NOW)  # circuit open: straight to the DLQ
        assert any(agg.pending_points() for agg in pipeline.aggregates.values())  # kept for rewriting
        await close(pipeline)
        return pipeline

    pipeline = asyncio.run(scenario())
    valid = {r.event.event_id for r in records if r.event is not None}
    dead = asyncio.run(read_topic(stack_settings, stack_settings.topic(INFLUX_DLQ)))
    lines = [line for r in dead for line in r.value.decode().split("\n")]
    assert len(lines) == pipeline.stats.influx_dead_lettered_lines
    # every event's point, plus the final values of aggregate minutes that left the window
    assert sum(line.startswith("sku_events,") for line in lines) == len(valid)
    assert all(line.startswith(("sku_events,", "throughput,", "dwell,", "missing_scans,")) for line in lines)
    reasons = [influx_reason(list(r.headers)) for r in dead]
    assert InfluxFailure.RETRIES_EXHAUSTED in reasons and InfluxFailure.CIRCUIT_OPEN in reasons
    assert count_points(stack_settings) == 0

    async def replay() -> None:
        writer = InfluxWriter(stack_settings.influx_url, stack_settings.influx_db)
        replayer = InfluxReplayer(
            writer,
            stack_settings.kafka_bootstrap,
            stack_settings.topic(INFLUX_DLQ),
            f"{stack_settings.faust_app_id}-replayer",
            session_timeout_ms=6000,
        )
        task = asyncio.create_task(replayer.run())
        try:
            await async_wait_until(lambda: replayer.replayed_chunks >= len(dead), timeout=60, what="replay")
        finally:
            replayer.stop()
            await task
            await writer.aclose()

    asyncio.run(replay())
    assert count_points(stack_settings) == len(valid)


def test_exact_end_offsets_on_the_embedded_broker(stack_settings: Settings) -> None:
    """Pins a broker quirk Faust's recovery depends on: the embedded broker reports a
    partition's end offset as the base offset of its last record batch + 1, so the outbox
    ends every changelog write with a one-record batch."""
    topic = stack_settings.topic(WARROOM_UPDATES)

    async def scenario() -> dict[int, int]:
        outbox = Outbox(stack_settings.kafka_bootstrap)
        await outbox.start()
        await outbox.send([OutRecord(topic, b"x", partition=0) for _ in range(50)], exact_end_offsets=True)
        await outbox.send([OutRecord(topic, b"y", partition=1) for _ in range(50)], exact_end_offsets=True)
        await outbox.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=stack_settings.kafka_bootstrap)
        await consumer.start()
        try:
            ends = await consumer.end_offsets([TopicPartition(topic, 0), TopicPartition(topic, 1)])
            return {tp.partition: offset for tp, offset in ends.items()}
        finally:
            await consumer.stop()

    assert asyncio.run(scenario()) == {0: 50, 1: 50}
