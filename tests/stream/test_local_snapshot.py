"""Local state snapshots against the real broker (issue #20): a restart reads its snapshot and
only the changelog tail after it; a partition without one, or with one that is corrupt, ends
beyond the changelog, or belongs to another log, is read from the changelog's start."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from config.settings import Settings
from stream.changelog_restore import changelog_ends, load_changelog
from stream.local_snapshot import LocalSnapshots, read_snapshot, restore_state
from stream.order_state import OrderState
from stream.sinks.changelog import decode_value, encode_value
from stream.sinks.outbox import Outbox, OutRecord
from stream.stage_api import StageValue, stage_table_key
from stream.topics import changelog_topic, ensure_topics
from stream.worker import TABLE

pytestmark = pytest.mark.integration


def _order(order_id: str, partition: int, seq: int) -> OrderState:
    return OrderState(order_id=order_id, partition=partition, skus={}, last_event_ns=0, seq=seq)


async def _write(settings: Settings, records: list[tuple[bytes, object, int]]) -> None:
    outbox = Outbox(settings.kafka_bootstrap)
    await outbox.start()
    try:
        await outbox.send(
            [
                OutRecord(changelog_topic(settings, TABLE), None if v is None else encode_value(v), k, p)
                for k, v, p in records
            ],
            exact_end_offsets=True,
        )
    finally:
        await outbox.stop()


async def _store_from_changelog(settings: Settings, partitions: list[int]) -> dict[str, object]:
    store: dict[str, object] = {}
    await load_changelog(settings.kafka_bootstrap, changelog_topic(settings, TABLE), partitions, store)
    return store


def _restore(settings: Settings, snapshots: LocalSnapshots, partitions: list[int]) -> tuple[dict[str, object], int]:
    store: dict[str, object] = {}
    read = asyncio.run(
        restore_state(snapshots, settings.kafka_bootstrap, changelog_topic(settings, TABLE), partitions, store)
    )
    return store, read


@pytest.fixture
def written(stack_settings: Settings, tmp_path: Path) -> tuple[Settings, LocalSnapshots]:
    """Partition 0 snapshotted after 4 records, then 3 more (an update, a tombstone, a new key);
    partition 1 has a changelog and no snapshot."""
    ensure_topics(stack_settings)
    topic = changelog_topic(stack_settings, TABLE)
    snapshots = LocalSnapshots(tmp_path / "state", topic)
    stage_key = stage_table_key("probe", "count-1")

    async def scenario() -> None:
        await _write(
            stack_settings,
            [
                (b"a", _order("a", 0, 1), 0),
                (b"b", _order("b", 0, 1), 0),
                (stage_key.encode(), StageValue("probe", "count-1", 0, 7), 0),
                (b"a", _order("a", 0, 2), 0),
                (b"x", _order("x", 1, 1), 1),
            ],
        )
        store = await _store_from_changelog(stack_settings, [0])
        ends = await changelog_ends(stack_settings.kafka_bootstrap, topic, [0])
        await snapshots.save(store, ends)  # what the worker does on a clean stop
        await _write(
            stack_settings,
            [(b"a", _order("a", 0, 3), 0), (b"b", None, 0), (b"c", _order("c", 0, 1), 0), (b"x", _order("x", 1, 2), 1)],
        )

    asyncio.run(scenario())
    return stack_settings, snapshots


def test_a_restart_reads_its_snapshot_and_only_the_changelog_tail(written: tuple[Settings, LocalSnapshots]) -> None:
    settings, snapshots = written
    store, read = _restore(settings, snapshots, [0, 1])
    assert store == asyncio.run(_store_from_changelog(settings, [0, 1]))
    assert read == 3 + 2  # partition 0's tail after the snapshot; partition 1 (no snapshot) whole
    a = store["a"]
    assert isinstance(a, OrderState) and a.seq == 3 and "b" not in store and set(store) >= {"c", "x"}


def _ignored(settings: Settings, snapshots: LocalSnapshots, caplog: pytest.LogCaptureFixture, reason: str) -> None:
    with caplog.at_level(logging.WARNING, logger="stream.local_snapshot"):
        store, read = _restore(settings, snapshots, [0])
    assert read == 7  # partition 0 read from its start
    assert store == asyncio.run(_store_from_changelog(settings, [0]))
    assert any(reason in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_a_corrupt_snapshot_is_ignored(
    written: tuple[Settings, LocalSnapshots], caplog: pytest.LogCaptureFixture
) -> None:
    settings, snapshots = written
    raw = bytearray(snapshots.path(0).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    snapshots.path(0).write_bytes(bytes(raw))
    _ignored(settings, snapshots, caplog, "digest mismatch")


def test_a_snapshot_beyond_the_changelog_end_is_ignored(
    written: tuple[Settings, LocalSnapshots], caplog: pytest.LogCaptureFixture
) -> None:
    """The broker lost data: the changelog ends before the offset the snapshot covers."""
    settings, snapshots = written
    asyncio.run(snapshots.save({"a": _order("a", 0, 9)}, {0: 50}))
    _ignored(settings, snapshots, caplog, "data lost or deleted")


def test_a_snapshot_of_another_log_under_the_same_name_is_ignored(
    written: tuple[Settings, LocalSnapshots], caplog: pytest.LogCaptureFixture
) -> None:
    """Within the changelog's offsets, but it does not hold the record just before its offset."""
    settings, snapshots = written
    asyncio.run(snapshots.save({"a": _order("a", 0, 2), "zz": _order("zz", 0, 1)}, {0: 5}))
    _ignored(settings, snapshots, caplog, "does not hold")


def test_values_survive_the_snapshot_byte_for_byte(written: tuple[Settings, LocalSnapshots]) -> None:
    _, snapshots = written
    snapshot = read_snapshot(snapshots.path(0))
    assert snapshot.partition == 0 and snapshot.offset == 4
    assert {k: decode_value(v) for k, v in snapshot.values.items()} == {
        b"a": _order("a", 0, 2),
        b"b": _order("b", 0, 1),
        stage_table_key("probe", "count-1").encode(): StageValue("probe", "count-1", 0, 7),
    }
