"""The membership fence beyond the outbox: InfluxDB writes and customer notices.

A worker frozen past its session (or one whose partitions were revoked) must not write
its stale minute aggregates over its successor's, nor notify customers from a batch that
is dropped. The pipeline runs in-process against the real broker and InfluxDB; the fence
is the outbox's, fed by a real :class:`~stream.kafka.membership_lease.MembershipLease`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alerting_receivers import http_receiver
from stream_eventgen import generate
from stream_harness import count_points, influx_query
from test_influx_writer import Clock, Scripted
from test_pipeline import NOW, changelog_state, source_records

from alerting.channels.http import make_client
from alerting.delivery import DeliveryStage
from config.settings import Settings
from orderradar.devstack.process import free_port
from stream.core.order_eta import ETA_EXTENSION
from stream.kafka.membership_lease import MembershipLease
from stream.pipeline import Pipeline, PipelineConfig
from stream.sinks.customer_notices import NoticeConfig, build_channels
from stream.sinks.influx import INFLUX_RETRY, InfluxWriter, gather_cancelling
from stream.sinks.outbox import Outbox, OutboxFenced
from stream.stage_api import BatchContext
from stream.stages.notice_stage import NoticeStage
from stream.worker import pipeline_topics

pytestmark = pytest.mark.integration

LINES = ["m,t=a v=1i 1", "m,t=a v=2i 2"]


class LeaseFence:
    """The outbox fence of :meth:`stream.kafka.batch_source.BatchSource.fence`, on a test clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.lease = MembershipLease(session_s=6.0, margin_s=2.0)
        self.lease.renewed(clock.now)
        self.refused = 0

    def __call__(self) -> None:
        if not self.lease.valid(self.clock.now):
            self.refused += 1
            raise OutboxFenced("membership lease expired")


class FreezingClock(Clock):
    """The worker is frozen (SIGSTOP) for 10 s during its first backoff sleep."""

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if len(self.slept) == 1:
            self.now += 10.0


def test_the_fence_is_checked_before_every_attempt_retries_included() -> None:
    clock = FreezingClock()
    fence = LeaseFence(clock)

    async def scenario() -> None:
        w = InfluxWriter(server.url, "db", timeout_s=0.5, policy=INFLUX_RETRY, sleep=clock.sleep, clock=clock)
        try:
            with pytest.raises(OutboxFenced):
                await w.write(LINES, fence=fence)
        finally:
            await w.aclose()

    with Scripted([(503, {}, 0.0), (204, {}, 0.0)]) as server:
        asyncio.run(scenario())
    assert len(server.requests) == 1  # the retry after the freeze never went out
    assert fence.refused == 1


def test_the_fence_is_checked_again_right_before_the_socket_write() -> None:
    """Frozen after the attempt's check (while the connection opened): the request is never
    written."""
    calls: list[int] = []

    def fence() -> None:
        calls.append(1)
        if len(calls) > 1:  # the first check is the attempt's own
            raise OutboxFenced("membership lease expired")

    async def scenario() -> None:
        w = InfluxWriter(server.url, "db", timeout_s=0.5)
        try:
            with pytest.raises(OutboxFenced):
                await w.write(LINES, fence=fence)
        finally:
            await w.aclose()

    with Scripted([(204, {}, 0.0)]) as server:
        asyncio.run(scenario())
    assert len(calls) == 2 and server.requests == []


def test_a_fenced_write_cancels_the_work_beside_it() -> None:
    cancelled = asyncio.Event()

    async def slow_write() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def fenced_send() -> None:
        await asyncio.sleep(0)
        raise OutboxFenced("membership lease expired")

    async def scenario() -> None:
        with pytest.raises(OutboxFenced):  # itself, not an ExceptionGroup: the source catches it
            await gather_cancelling(slow_write(), fenced_send())
        assert cancelled.is_set()

    asyncio.run(scenario())


async def fenced_pipeline(
    settings: Settings, influx: InfluxWriter, fence: LeaseFence, stages: list[Any] | None = None
) -> Pipeline:
    outbox = Outbox(settings.kafka_bootstrap, fence=fence)
    await outbox.start()
    return Pipeline(PipelineConfig(pipeline_topics(settings)), {}, outbox, influx, stages or [])


async def close(pipeline: Pipeline) -> None:
    await pipeline.outbox.stop()
    await pipeline.influx.aclose()


def test_a_batch_whose_lease_lapses_during_influx_retries_is_dropped(stack_settings: Settings) -> None:
    sources = source_records(generate(seed=61, total=300), stack_settings.partitions)
    clock = FreezingClock()
    fence = LeaseFence(clock)

    async def scenario() -> None:
        influx = InfluxWriter(
            server.url,
            stack_settings.influx_db,
            timeout_s=2.0,
            policy=INFLUX_RETRY,
            sleep=clock.sleep,
            clock=clock,
        )
        pipeline = await fenced_pipeline(stack_settings, influx, fence)
        try:
            with pytest.raises(OutboxFenced):
                await pipeline.process(sources, NOW)
        finally:
            await close(pipeline)

    with Scripted([(503, {}, 0.0), (204, {}, 0.0)]) as server:
        asyncio.run(scenario())
    assert len(server.requests) == 1
    assert changelog_state(stack_settings) == {}  # the batch is dropped: its successor writes it


def test_a_tick_writes_only_the_aggregates_of_owned_partitions(stack_settings: Settings) -> None:
    """InfluxDB was down for a batch (its minutes stay pending), then partition 1 was
    revoked: until the next assignment, ticks must leave partition 1's minutes to its new
    owner."""
    sources = source_records(generate(seed=62, total=800), stack_settings.partitions)
    fence = LeaseFence(Clock())

    async def scenario() -> None:
        down = InfluxWriter(
            f"http://127.0.0.1:{free_port()}",
            stack_settings.influx_db,
            policy=replace(INFLUX_RETRY, attempts=1, later_base_delay=0.0),
        )
        pipeline = await fenced_pipeline(stack_settings, down, fence)
        try:
            await pipeline.process(sources, NOW)
            assert all(agg.dirty for agg in pipeline.aggregates.values())  # pending, not lost
            await down.aclose()
            pipeline.influx = InfluxWriter(stack_settings.influx_url, stack_settings.influx_db)
            pipeline.owned = lambda p: p != 1
            await pipeline.tick(NOW)
            assert pipeline.aggregates[1].dirty  # still pending: rebuilt on reassignment
        finally:
            await close(pipeline)

    asyncio.run(scenario())
    by_partition = {
        p: influx_query(stack_settings, f"SELECT count(\"count\") FROM throughput WHERE partition='{p}'")
        for p in range(stack_settings.partitions)
    }
    assert by_partition[1] == []
    assert all(by_partition[p] for p in by_partition if p != 1)


class TickLineStage:
    """A stage whose tick adds a point (as the delays stage adds its closed minutes)."""

    name = "ticker"

    async def process(self, ctx: BatchContext) -> None:
        pass

    async def tick(self, ctx: BatchContext) -> None:
        ctx.lines.append(f"ticker,stage=ticker n=1i {1_700_000_000_000_000_000}")


def test_a_tick_between_revocation_and_assignment_writes_nothing(stack_settings: Settings) -> None:
    sources = source_records(generate(seed=64, total=400), stack_settings.partitions)
    fence = LeaseFence(Clock())

    async def scenario() -> None:
        influx = InfluxWriter(stack_settings.influx_url, stack_settings.influx_db)
        pipeline = await fenced_pipeline(stack_settings, influx, fence, [TickLineStage()])
        try:
            await pipeline.process(sources, NOW)
            pipeline.owned = lambda p: False  # eager protocol: every partition revoked
            await pipeline.tick(NOW)
            assert count_points(stack_settings, "ticker", "n") == 0
            pipeline.owned = lambda p: True  # assigned again
            await pipeline.tick(NOW)
            assert count_points(stack_settings, "ticker", "n") == 1
        finally:
            await close(pipeline)

    asyncio.run(scenario())


# -- customer notices ---------------------------------------------------------------------


class LateStage:
    """Marks every order of the batch late (what the delays stage does for a late order)."""

    name = "late"

    async def process(self, ctx: BatchContext) -> None:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        eta = {"state": "late", "from": start.isoformat(), "to": (start + timedelta(hours=4)).isoformat()}
        for order_id in list(ctx.orders)[:3]:
            ctx.update_order(ctx.orders[order_id].with_extension(ETA_EXTENSION, eta))


def notice_stage(url: str, client: Any) -> NoticeStage:
    config = NoticeConfig.model_validate(
        {
            "language": "en",
            "receivers": {"hook": {"type": "webhook", "url_secret": "t_url", "signing_secret": "t_sign"}},
        }
    )
    secrets = {"t_url": f"{url}/notify/x", "t_sign": "s" * 32}
    return NoticeStage(DeliveryStage(build_channels(config, secrets, client)), ["hook"], "en")


def _notified(hook: Any) -> set[str]:
    """Orders told (the webhook's ``Idempotency-Key`` is ``notice/<order>/<cause>/<receiver>``)."""
    return {r["headers"]["Idempotency-Key"].split("/")[1] for r in hook.requests}


def test_notices_go_out_only_for_written_batches_and_within_the_lease(stack_settings: Settings) -> None:
    records = generate(seed=63, total=600)
    first = source_records(records[:300], stack_settings.partitions)
    clock = Clock()
    fence = LeaseFence(clock)

    async def scenario(url: str, hook: Any) -> None:
        client = make_client()
        stage = notice_stage(url, client)
        pipeline = await fenced_pipeline(
            stack_settings,
            InfluxWriter(stack_settings.influx_url, stack_settings.influx_db),
            fence,
            [LateStage(), stage],
        )
        try:
            # 1. A zombie's batch: membership not confirmed, nothing written, nobody told.
            async def unconfirmed() -> bool:
                return False

            pipeline.confirm_membership = unconfirmed
            ctx = await pipeline.process(first, NOW)
            assert ctx.dropped_partitions and stage.outboxes  # decided in memory only
            await pipeline.tick(NOW)
            await stage.drain()
            assert hook.requests == []
            assert count_points(stack_settings, "customer_notices", "order_id") == 0

            # 2. The same records written by a member: told once the batch was written.
            # (the source reads a dropped batch's partitions again: Pipeline.recovered)
            pipeline.confirm_membership = None
            await pipeline.recovered(set(range(stack_settings.partitions)))
            assert stage.outboxes == {}
            ctx = await pipeline.process(first, NOW)
            decided = {o for o in ctx.orders if ETA_EXTENSION in ctx.orders[o].extensions}
            await stage.drain()
            assert hook.requests == []  # not before the batch's outputs were accepted
            await pipeline.tick(NOW)
            await stage.drain()
            assert _notified(hook) == decided and len(hook.requests) == len(decided)

            # 3. Written, but the lease lapses before delivery (frozen): nothing sent.
            second = source_records(records[300:], stack_settings.partitions)
            ctx = await pipeline.process(second, NOW)
            assert ctx.dropped_partitions == set()
            assert any(outbox.items for outbox in stage.outboxes.values())  # new notices, written
            clock.now += 10.0
            with contextlib.suppress(OutboxFenced):  # the tick's own writes are fenced too
                await pipeline.tick(NOW)
            await stage.drain()
            assert _notified(hook) == decided
        finally:
            await close(pipeline)
            await client.aclose()

    with http_receiver(b"{}") as (url, hook):
        asyncio.run(scenario(url, hook))
