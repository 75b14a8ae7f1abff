"""The worker source's changelog reader against the real broker: what a worker restores
for the partitions it is assigned (the last value per key, tombstones applied, stage
entries too, other partitions untouched)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from config.settings import Settings
from stream.core.order_state import OrderState
from stream.kafka.admin import ensure_topics
from stream.kafka.batch_source import source_group
from stream.kafka.changelog_restore import RecoveryError, changelog_ends, load_changelog
from stream.sinks.changelog import encode_value
from stream.sinks.outbox import Outbox, OutboxFenced, OutRecord
from stream.stage_api import StageValue, stage_table_key
from stream.topics import changelog_topic
from stream.worker import TABLE

pytestmark = pytest.mark.integration


def _order(order_id: str, partition: int, seq: int) -> OrderState:
    return OrderState(order_id=order_id, partition=partition, skus={}, last_event_ns=0, seq=seq)


def test_changelog_of_assigned_partitions_restores_last_values(stack_settings: Settings) -> None:
    ensure_topics(stack_settings)
    topic = changelog_topic(stack_settings, TABLE)
    stage_key = stage_table_key("probe", "count-1")

    async def scenario() -> dict[str, object]:
        outbox = Outbox(stack_settings.kafka_bootstrap)
        await outbox.start()
        try:
            await outbox.send(
                [
                    OutRecord(topic, encode_value(_order("a", 0, 1)), b"a", 0),
                    OutRecord(topic, encode_value(_order("b", 1, 1)), b"b", 1),
                    OutRecord(topic, encode_value(_order("c", 2, 1)), b"c", 2),
                    OutRecord(topic, encode_value(StageValue("probe", "count-1", 1, 7)), stage_key.encode(), 1),
                ],
                exact_end_offsets=True,
            )
            await outbox.send(
                [
                    OutRecord(topic, encode_value(_order("a", 0, 2)), b"a", 0),
                    OutRecord(topic, None, b"b", 1),  # expired: a tombstone
                ],
                exact_end_offsets=True,
            )
        finally:
            await outbox.stop()
        store: dict[str, object] = {"stale": _order("stale", 5, 1)}
        read = await load_changelog(stack_settings.kafka_bootstrap, topic, [0, 1], store)
        assert read == 5
        return store

    store = asyncio.run(scenario())
    assert set(store) == {"a", stage_key, "stale"}  # c is partition 2's; the loader only adds
    a = store["a"]
    assert isinstance(a, OrderState) and a.seq == 2
    stage = store[stage_key]
    assert isinstance(stage, StageValue) and stage.data == 7


def test_key_written_again_after_its_tombstone_is_restored(stack_settings: Settings) -> None:
    """Only the last version of a key counts, whichever came before it."""
    ensure_topics(stack_settings)
    topic = changelog_topic(stack_settings, TABLE)

    async def scenario() -> dict[str, object]:
        outbox = Outbox(stack_settings.kafka_bootstrap)
        await outbox.start()
        try:
            versions = [
                (b"d", _order("d", 0, 1)),
                (b"d", None),
                (b"d", _order("d", 0, 3)),
                (b"e", _order("e", 0, 1)),
                (b"e", None),
                (b"d", _order("d", 0, 4)),
            ]
            for key, order in versions:
                value = None if order is None else encode_value(order)
                await outbox.send([OutRecord(topic, value, key, 0)], exact_end_offsets=True)
        finally:
            await outbox.stop()
        store: dict[str, object] = {}
        assert await load_changelog(stack_settings.kafka_bootstrap, topic, [0], store) == 6
        return store

    store = asyncio.run(scenario())
    assert set(store) == {"d"}  # e's last version is a tombstone
    d = store["d"]
    assert isinstance(d, OrderState) and d.seq == 4


def test_changelog_end_is_where_this_worker_left_it_until_another_writes(stack_settings: Settings) -> None:
    """What a worker compares on re-assignment (review finding 2): the offset after the last
    record its outbox wrote equals the changelog's end, until another owner writes."""
    ensure_topics(stack_settings)
    topic = changelog_topic(stack_settings, TABLE)
    bootstrap = stack_settings.kafka_bootstrap

    async def scenario() -> tuple[int, int, int, int]:
        mine, other = Outbox(bootstrap), Outbox(bootstrap)
        await mine.start()
        await other.start()
        try:
            await mine.send(
                [OutRecord(topic, encode_value(_order(f"k{i}", 6, i)), f"k{i}".encode(), 6) for i in range(5)],
                exact_end_offsets=True,
            )
            left = mine.last_offsets[(topic, 6)] + 1
            ends: dict[int, int] = {}
            await load_changelog(bootstrap, topic, [6], {}, ends_read=ends)
            end_before = (await changelog_ends(bootstrap, topic, [6]))[6]
            await other.send([OutRecord(topic, encode_value(_order("k0", 6, 9)), b"k0", 6)], exact_end_offsets=True)
            end_after = (await changelog_ends(bootstrap, topic, [6]))[6]
        finally:
            await mine.stop()
            await other.stop()
        return left, ends[6], end_before, end_after

    left, read_to, end_before, end_after = asyncio.run(scenario())
    assert left == read_to == end_before == 5
    assert end_after == 6


def test_unreachable_broker_is_a_recovery_error() -> None:
    with pytest.raises(RecoveryError):
        asyncio.run(load_changelog("127.0.0.1:1", "nowhere", [0], {}))


def _send_fenced(settings: Settings, fence: Callable[[], None], key: str, partition: int) -> int:
    """Send one changelog record through an Outbox guarded by ``fence``, which must refuse it;
    the number of records then read back from that changelog partition."""
    ensure_topics(settings)
    topic = changelog_topic(settings, TABLE)

    async def scenario() -> int:
        outbox = Outbox(settings.kafka_bootstrap, fence=fence)
        await outbox.start()
        try:
            with pytest.raises(OutboxFenced):
                record = OutRecord(topic, encode_value(_order(key, partition, 1)), key.encode(), partition)
                await outbox.send([record])
        finally:
            await outbox.stop()
        return await load_changelog(settings.kafka_bootstrap, topic, [partition], {})

    return asyncio.run(scenario())


def test_fenced_outbox_sends_nothing(stack_settings: Settings) -> None:
    def fence() -> None:
        raise OutboxFenced("lease expired")

    assert _send_fenced(stack_settings, fence, "z", 3) == 0


def test_fence_is_checked_again_at_the_socket(stack_settings: Settings) -> None:
    """A fence that still passed when the records were queued but not when the request is
    written (the process was frozen in between) keeps the request off the wire."""
    calls: list[int] = []

    def fence() -> None:
        calls.append(1)
        if len(calls) > 1:  # the first check is at queueing time
            raise OutboxFenced("lease expired")

    assert _send_fenced(stack_settings, fence, "w", 4) == 0
    assert len(calls) == 2


def test_source_group_is_the_apps_own() -> None:
    assert source_group(Settings(topic_prefix="x-")).endswith("-source")
