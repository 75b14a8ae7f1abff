"""Reading a worker's state back from its changelog topic (a group-less aiokafka consumer).

Used by :class:`stream.kafka.batch_source.BatchSource` when it is assigned partitions whose state
it does not hold, by the restore benchmark and by the tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from stream.core.order_state import OrderState
from stream.sinks.changelog import decode_value


class RecoveryError(RuntimeError):
    """The changelog could not be read to its end."""


async def load_changelog(
    bootstrap: str,
    topic: str,
    partitions: Iterable[int],
    store: MutableMapping[str, Any],
    security: Mapping[str, Any] | None = None,
    stall_s: float = 60.0,
    ends_read: dict[int, int] | None = None,
    start_offsets: Mapping[int, int] | None = None,
    seed: Mapping[bytes, bytes | None] | None = None,
    keys_read: dict[int, set[bytes]] | None = None,
) -> int:
    """Apply the changelog of ``partitions`` (from its start) to ``store``; records read.
    ``ends_read`` receives the end offset read to per partition.

    ``seed`` (raw values by key, e.g. a local snapshot's) is applied first and
    ``start_offsets`` (partition -> offset the seed covers) are where reading starts: only the
    tail after a snapshot is read (:mod:`stream.sinks.local_snapshot`). ``keys_read`` receives the
    keys of the records read of each partition read from a ``start_offsets`` entry.

    Reads each partition up to the end offset the broker reports at the start (the pipeline
    writes the last record of each changelog send as a batch of its own, so the embedded
    broker's end offset is exact, see :meth:`stream.sinks.outbox.Outbox.send`).

    Only the last version of each key is decoded (after the whole read): the embedded
    broker never compacts, so a changelog holds many versions per key, and decoding each
    (~96 us) made restores many times slower than reading the raw bytes.
    """
    tps = [TopicPartition(topic, p) for p in sorted(set(partitions))]
    if not tps:
        return 0
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **(security or {}),
    )
    read = 0
    latest: dict[bytes, bytes | None] = dict(seed or {})  # key -> raw value of its last version (None: tombstone)
    start_offsets = start_offsets or {}
    try:
        await consumer.start()
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        if ends_read is not None:
            ends_read.update({tp.partition: ends[tp] for tp in tps})
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            starts[tp] = max(starts[tp], start_offsets.get(tp.partition, 0))
            consumer.seek(tp, starts[tp])
        left = {tp for tp in tps if ends[tp] > starts[tp]}
        progressed = time.monotonic()
        while left:
            batch = await consumer.getmany(*left, timeout_ms=500, max_records=50_000)
            for tp, records in batch.items():
                for record in records:
                    latest[record.key] = record.value
                read += len(records)
                if keys_read is not None and tp.partition in start_offsets:
                    keys_read.setdefault(tp.partition, set()).update(r.key for r in records)
            if batch:
                progressed = time.monotonic()
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
            if left and time.monotonic() - progressed > stall_s:
                raise RecoveryError(
                    f"changelog {topic} not read to its end within {stall_s:.0f}s: "
                    f"{sorted(tp.partition for tp in left)} left"
                )
    except KafkaError as exc:
        raise RecoveryError(f"changelog {topic}: {exc!r}") from exc
    finally:
        await consumer.stop()
    for n, (raw_key, raw) in enumerate(latest.items(), 1):
        put_value(store, raw_key, raw)
        if n % 5_000 == 0:
            await asyncio.sleep(0)  # a restore runs beside the batch loop and aiokafka's heartbeats
    return read


def put_value(store: MutableMapping[str, Any], raw_key: bytes, raw: bytes | None) -> None:
    """Apply one changelog record's last version to ``store`` (``None``: a tombstone)."""
    key = raw_key.decode()
    if raw is None:
        store.pop(key, None)
        return
    value = decode_value(raw)
    if isinstance(value, OrderState) and value.order_id == key:
        key = value.order_id  # one string for the key and the state (39 B an order)
    store[key] = value


async def changelog_ends(
    bootstrap: str, topic: str, partitions: Iterable[int], security: Mapping[str, Any] | None = None
) -> dict[int, int]:
    """The end offset of each of ``partitions`` of ``topic`` (a group-less consumer of its own)."""
    return {p: end for p, (_, end) in (await changelog_ranges(bootstrap, topic, partitions, security)).items()}


async def changelog_ranges(
    bootstrap: str, topic: str, partitions: Iterable[int], security: Mapping[str, Any] | None = None
) -> dict[int, tuple[int, int]]:
    """The (beginning, end) offsets of each of ``partitions`` of ``topic``."""
    tps = [TopicPartition(topic, p) for p in sorted(set(partitions))]
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **(security or {})
    )
    try:
        await consumer.start()
        ends = await consumer.end_offsets(tps)
        begins = await consumer.beginning_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: (begins[tp], ends[tp]) for tp in tps}


async def records_at(
    bootstrap: str,
    topic: str,
    offsets: Mapping[int, int],
    security: Mapping[str, Any] | None = None,
    timeout_s: float = 10.0,
) -> dict[int, tuple[int, bytes | None, bytes | None] | None]:
    """The first record at or after ``offsets[p]`` of each partition ``p`` as (offset, key,
    value); ``None`` when none came within ``timeout_s``."""
    tps = {p: TopicPartition(topic, p) for p in offsets}
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **(security or {})
    )
    found: dict[int, tuple[int, bytes | None, bytes | None] | None] = {p: None for p in offsets}
    try:
        await consumer.start()
        consumer.assign(list(tps.values()))
        for p, tp in tps.items():
            consumer.seek(tp, offsets[p])
        deadline = time.monotonic() + timeout_s
        while any(v is None for v in found.values()) and time.monotonic() < deadline:
            left = [tps[p] for p, v in found.items() if v is None]
            batch = await consumer.getmany(*left, timeout_ms=500, max_records=1)
            for tp, records in batch.items():
                if records and found[tp.partition] is None:
                    r = records[0]
                    found[tp.partition] = (r.offset, r.key, r.value)
    finally:
        await consumer.stop()
    return found
