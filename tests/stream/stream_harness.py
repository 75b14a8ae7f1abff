"""Helpers of the stream integration tests: producing, reading topics, querying InfluxDB,
running a worker subprocess."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord

from config.settings import Settings, to_env
from orderradar.devstack.process import ManagedProcess
from stream.topics import ORDER_EVENTS

REPO = Path(__file__).resolve().parents[2]
CHINA = timezone(timedelta(hours=8))


def worker_argv(
    *extra: str, worker_log_level: str | None = None, log_level: str = "WARNING", core_only: bool = True
) -> list[str]:
    """``orderradar worker`` with the tests' short session timeout: the core stages only unless
    ``core_only`` is off; Faust's log level from ``ORDERRADAR_TEST_WORKER_LOG`` unless given."""
    level = worker_log_level or os.environ.get("ORDERRADAR_TEST_WORKER_LOG", "info")
    return [
        sys.executable,
        "-m",
        "orderradar.cli",
        "--log-level",
        log_level,
        "worker",
        "--session-timeout",
        "6",
        "--worker-log-level",
        level,
        *(["--core-only"] if core_only else []),
        *extra,
    ]


def start_worker(
    settings: Settings,
    log_path: Path,
    *extra: str,
    worker_log_level: str | None = None,
    log_level: str = "WARNING",
    core_only: bool = True,
    env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    """The worker subprocess (:func:`worker_argv`) with the test's settings and ``env`` in its environment."""
    environ = {**os.environ, **to_env(settings), "PYTHONUNBUFFERED": "1", **(env or {})}
    argv = worker_argv(*extra, worker_log_level=worker_log_level, log_level=log_level, core_only=core_only)
    return ManagedProcess("worker", argv, log_path, env=environ, cwd=REPO).start()


async def produce(settings: Settings, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> dict[int, int]:
    """Produce keyed records with the batch API (murmur2 partitioning, like any producer);
    the number of records per partition."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", max_batch_size=256 * 1024)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        partitioner = DefaultPartitioner()
        by_partition: dict[int, list[tuple[bytes | None, bytes]]] = {}
        for n, (key, value) in enumerate(records):
            p = partitioner(key, partitions, partitions) if key is not None else partitions[n % len(partitions)]
            by_partition.setdefault(p, []).append((key, value))
        futures = []
        for p, items in by_partition.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    batch.close()
                    futures.append(await producer.send_batch(batch, topic, partition=p))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            batch.close()
            futures.append(await producer.send_batch(batch, topic, partition=p))
        await asyncio.gather(*futures)
        return {p: len(items) for p, items in by_partition.items()}
    finally:
        await producer.stop()


def json_event(order_id: str, n: int, status: str, at: datetime, **fields: Any) -> dict[str, Any]:
    """An ``order-events`` record as a source sends it (JSON): SKU ``sku-1`` from the OMS, its
    time with China's offset."""
    return {
        "event_id": f"{order_id}-{n}",
        "order_id": order_id,
        "sku": "sku-1",
        "status": status,
        "event_time": at.astimezone(CHINA).isoformat(),
        "source": "oms",
        **fields,
    }


def send_json(settings: Settings, events: Iterable[Mapping[str, Any]]) -> None:
    """Produce JSON events to ``order-events``, keyed by their order."""
    records = [(str(e["order_id"]).encode(), orjson.dumps(e)) for e in events]
    asyncio.run(produce(settings, settings.topic(ORDER_EVENTS), records))


async def read_topic(settings: Settings, topic: str, timeout_s: float = 60.0) -> list[ConsumerRecord]:
    """Every record currently in ``topic`` (all partitions, from the beginning).

    The end of each partition is the high watermark of fetch responses: the embedded
    broker's ListOffsets ("end offsets") is wrong for multi-record batches."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[ConsumerRecord] = []

        async def done() -> bool:
            for tp in tps:
                highwater = consumer.highwater(tp)
                if highwater is None or await consumer.position(tp) < highwater:
                    return False
            return True

        async with asyncio.timeout(timeout_s):
            while True:
                for records in (await consumer.getmany(timeout_ms=200, max_records=10000)).values():
                    out.extend(records)
                if await done():
                    return out
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    found = consumer.partitions_for_topic(topic)
    if not found:
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(topic)
    if not found:
        raise AssertionError(f"topic {topic} does not exist")
    return set(found)


async def committed(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """Offsets of ``topic`` committed by ``group``, per partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        return {tp.partition: (await consumer.committed(tp)) or 0 for tp in tps}
    finally:
        await consumer.stop()


def influx_series(settings: Settings, query: str) -> list[dict[str, Any]]:
    """Every series of an InfluxQL answer (``columns``, ``values``, and ``tags`` when grouped)."""
    response = httpx.get(f"{settings.influx_url}/query", params={"db": settings.influx_db, "q": query}, timeout=30)
    response.raise_for_status()
    result = response.json()["results"][0]
    if "error" in result:
        raise AssertionError(f"{query}: {result['error']}")
    return list(result.get("series") or [])


def influx_query(settings: Settings, query: str) -> list[list[object]]:
    """Values of the first series of an InfluxQL query ([] when there is none)."""
    series = influx_series(settings, query)
    return list(series[0]["values"]) if series else []


def count_points(settings: Settings, measurement: str = "sku_events", field: str = "event_id") -> int:
    values = influx_query(settings, f'SELECT count("{field}") FROM "{measurement}"')
    return int(values[0][1]) if values else 0


def event_ids_in_influx(settings: Settings) -> list[str]:
    """Every sku_events point's event_id (a list: duplicates would show twice)."""
    out: list[str] = []
    values = influx_query(settings, 'SELECT "event_id" FROM "sku_events"')
    out.extend(str(v[1]) for v in values)
    return out


def unique_group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def latest_by_key(records: Sequence[ConsumerRecord]) -> dict[bytes, ConsumerRecord]:
    latest: dict[bytes, ConsumerRecord] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        if record.key is not None:
            latest[record.key] = record
    return latest
