"""Local state snapshots against the real broker (issue #20): a restart reads its snapshot (a
base and the deltas after it) and only the changelog tail after it; a partition without one,
or with one that is corrupt, ends beyond the changelog, or belongs to another log, is read
from the changelog's start; a torn delta is skipped and the changelog fills in."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from stream_harness import committed, json_event, send_json, start_worker

from config.settings import Settings
from orderradar.devstack.waiting import wait_until
from stream.core.order_state import OrderState
from stream.kafka.admin import ensure_topics
from stream.kafka.batch_source import source_group
from stream.kafka.changelog_restore import changelog_ends, load_changelog
from stream.sinks.changelog import ChangelogSink, Entry, decode_value, encode_value
from stream.sinks.local_snapshot import LocalSnapshots, read_snapshot, restore_state
from stream.sinks.outbox import Outbox, OutRecord
from stream.sinks.sink import Fence
from stream.sinks.snapshot_files import delta_files, delta_path, encode_item, read_delta, write_delta
from stream.stage_api import StageValue, stage_table_key
from stream.topics import ORDER_EVENTS, changelog_topic
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
    with caplog.at_level(logging.WARNING, logger="stream.sinks.local_snapshot"):
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
    asyncio.run(LocalSnapshots(snapshots.directory, snapshots.changelog).save({"a": _order("a", 0, 9)}, {0: 50}))
    _ignored(settings, snapshots, caplog, "data lost or deleted")


def test_a_snapshot_of_another_log_under_the_same_name_is_ignored(
    written: tuple[Settings, LocalSnapshots], caplog: pytest.LogCaptureFixture
) -> None:
    """Within the changelog's offsets, but it does not hold the record just before its offset."""
    settings, snapshots = written
    other = LocalSnapshots(snapshots.directory, snapshots.changelog)
    asyncio.run(other.save({"a": _order("a", 0, 2), "zz": _order("zz", 0, 1)}, {0: 5}))
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


# -- deltas: what a worker writes between restarts ---------------------------------------------


class _Worker:
    """A worker's state path around its snapshots: restore, then batches written through the
    changelog sink (whose keys the snapshots note), the table updated as the pipeline does,
    and a save after each batch as the source does."""

    def __init__(self, settings: Settings, snapshots: LocalSnapshots) -> None:
        self.settings = settings
        self.snapshots = snapshots
        self.topic = changelog_topic(settings, TABLE)
        self.store: dict[str, object] = {}
        self.ends: dict[int, int] = {}
        self.read = 0

    async def run(self, batches: list[tuple[list[Entry], bool]]) -> None:
        """Restore partition 0, then each batch (entries, save after it); no clean stop."""
        self.read = await restore_state(
            self.snapshots, self.settings.kafka_bootstrap, self.topic, [0], self.store, ends_read=self.ends
        )
        outbox = Outbox(self.settings.kafka_bootstrap)
        await outbox.start()
        try:
            sink = ChangelogSink(outbox, self.topic)
            sink.on_written = self.snapshots.note
            for entries, save in batches:
                await sink.write(entries, Fence(owned=lambda partition: True))
                for key, value, _ in entries:
                    if value is None:
                        self.store.pop(key, None)
                    else:
                        self.store[key] = value
                # as the source's clean ends: what it read, or past its last write
                self.ends[0] = max(self.ends[0], outbox.last_offsets.get((self.topic, 0), -1) + 1)
                if save:
                    self.snapshots.maybe_save(self.store, self.ends, now=float("inf"))
                    await self.snapshots.settle()
        finally:
            await outbox.stop()


def _deltas(snapshots: LocalSnapshots) -> list[tuple[int, int, set[bytes]]]:
    return sorted(
        (start, offset, set(read_delta(path).values))
        for start, offset, path in delta_files(snapshots.directory, snapshots.changelog, 0)
    )


BATCHES: list[tuple[list[Entry], bool]] = [
    ([("a", _order("a", 0, 4), 0), ("d", _order("d", 0, 1), 0)], True),
    ([("c", None, 0), ("d", _order("d", 0, 2), 0), ("e", _order("e", 0, 1), 0)], True),
    ([("a", _order("a", 0, 5), 0), ("f", _order("f", 0, 1), 0)], False),  # after the last save: the tail
]


def _run_with_deltas(settings: Settings, written: LocalSnapshots) -> tuple[_Worker, LocalSnapshots]:
    """The ``written`` changelog (partition 0 ends at 7) and its snapshot (at 4), restored by a
    worker that saves three deltas (no compaction: the items are tiny), then writes one more
    batch and is gone without a clean stop."""
    snapshots = LocalSnapshots(written.directory, written.changelog, compact_ratio=1e9)
    worker = _Worker(settings, snapshots)
    asyncio.run(worker.run([([], True), *BATCHES]))
    return worker, snapshots


def test_a_restart_reads_the_base_its_deltas_and_the_changelog_after_them(
    written: tuple[Settings, LocalSnapshots],
) -> None:
    settings = written[0]
    before, snapshots = _run_with_deltas(*written)
    assert snapshots.compactions == 0 and snapshots.bases == 0
    # each delta holds only the keys its batch wrote (the first save after the restore also
    # holds the 3 keys the restore read after the fixture's base, which it continues)
    assert _deltas(snapshots) == [(4, 7, {b"a", b"b", b"c"}), (7, 9, {b"a", b"d"}), (9, 12, {b"c", b"d", b"e"})]

    restarted = LocalSnapshots(snapshots.directory, snapshots.changelog, compact_ratio=1e9)
    after = _Worker(settings, restarted)
    asyncio.run(after.run([([("g", _order("g", 0, 1), 0)], True)]))
    assert after.read == 2  # the batch written after the last delta
    expected = asyncio.run(_store_from_changelog(settings, [0]))
    assert after.store == expected and before.store.items() <= expected.items()
    assert restarted.bases == 0  # the restarted worker continues the chain: its delta holds the tail and its batch
    assert _deltas(restarted)[-1] == (12, 15, {b"a", b"f", b"g"})


def test_a_torn_delta_is_skipped_and_the_changelog_fills_in(
    written: tuple[Settings, LocalSnapshots], caplog: pytest.LogCaptureFixture
) -> None:
    settings = written[0]
    _, snapshots = _run_with_deltas(*written)
    torn = snapshots.directory / f"{snapshots.changelog}-0.{9:020d}-{12:020d}.delta"
    torn.write_bytes(torn.read_bytes()[:-7])  # killed mid-write
    with caplog.at_level(logging.WARNING, logger="stream.sinks.local_snapshot"):
        store, read = _restore(settings, LocalSnapshots(snapshots.directory, snapshots.changelog), [0])
    assert read == 5  # from the last whole delta's offset (9) to the end (14)
    assert store == asyncio.run(_store_from_changelog(settings, [0]))
    assert any(torn.name in r.getMessage() and "ignored" in r.getMessage() for r in caplog.records)


def test_deltas_past_their_share_of_the_base_are_compacted_into_it(written: tuple[Settings, LocalSnapshots]) -> None:
    settings, _ = written
    compacting = LocalSnapshots(written[1].directory, written[1].changelog, compact_ratio=0.01, compact_min_bytes=0)
    worker = _Worker(settings, compacting)
    asyncio.run(worker.run(BATCHES))
    assert compacting.compactions == 2 and _deltas(compacting) == []
    base = read_snapshot(compacting.path(0))
    assert base.offset == 12 == worker.ends[0] - 2  # the last save, before the unsaved batch
    store, read = _restore(settings, LocalSnapshots(compacting.directory, compacting.changelog), [0])
    assert read == 2 and store == asyncio.run(_store_from_changelog(settings, [0]))


def test_a_delta_that_takes_the_image_beyond_the_changelog_end_voids_it(
    written: tuple[Settings, LocalSnapshots], caplog: pytest.LogCaptureFixture
) -> None:
    """The checks hold for the combined image: the base (at 4) is fine, its delta ends at 50."""
    settings, snapshots = written
    path = delta_path(snapshots.directory, snapshots.changelog, 0, 4, 50)
    write_delta(path, 0, 4, 50, [encode_item(b"a", encode_value(_order("a", 0, 9)))], 1)
    _ignored(settings, snapshots, caplog, "data lost or deleted")


# -- the worker: deltas of what its batches wrote ------------------------------------------------


def _processed(settings: Settings, count: int) -> None:
    topic = settings.topic(ORDER_EVENTS)
    wait_until(
        lambda: sum(asyncio.run(committed(settings, source_group(settings), topic)).values()) >= count,
        120,
        what=f"{count} events committed",
    )


@pytest.mark.slow
def test_a_worker_saves_a_delta_of_the_orders_its_batches_changed(stack_settings: Settings, tmp_path: Path) -> None:
    """A worker stopped cleanly saves a base; restarted, it saves only the orders its batches
    changed since (keys from the changelog sink, through the source's hook); the base and the
    delta are the changelog's image."""
    settings = stack_settings.model_copy(update={"data_dir": tmp_path / "data"})
    ensure_topics(settings)
    topic = changelog_topic(settings, TABLE)
    state = LocalSnapshots((settings.data_dir / "state").resolve(), topic)
    now = datetime.now(UTC)
    orders = [f"snap-{i}" for i in range(24)]
    send_json(settings, [json_event(o, 0, "paid", now - timedelta(hours=2)) for o in orders])
    for run, changed in enumerate((orders, orders[::3])):
        if run:
            events = [json_event(o, 1, "hub_arrival", now - timedelta(hours=1), node="HUB-A") for o in changed]
            send_json(settings, events)
        worker = start_worker(settings, tmp_path / f"worker-{run}.log")
        try:
            _processed(settings, len(orders) + run * len(changed))
        finally:
            worker.stop(timeout=60)  # SIGTERM: a clean stop saves
    partitions = list(range(settings.partitions))
    deltas = {
        key.decode()
        for p in partitions
        for _, _, path in delta_files(state.directory, topic, p)
        for key in read_delta(path).values
    }
    assert deltas == set(orders[::3])
    expected = asyncio.run(_store_from_changelog(settings, partitions))
    images = {}
    for p in partitions:
        image = state.load(p, 0, 2**62)
        if image is not None:
            images.update({k.decode(): decode_value(v) for k, v in image.values.items()})
    assert images == expected
