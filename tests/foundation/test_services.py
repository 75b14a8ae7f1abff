"""The session fixtures really talk to the broker (groups included) and to InfluxDB."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from config.settings import Settings
from stream.kafka.admin import ensure_topics
from stream.topics import ORDER_EVENTS, all_topics

pytestmark = pytest.mark.integration


def test_every_topic_is_precreated_with_its_partition_count(stack_settings: Settings) -> None:
    async def describe() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=stack_settings.kafka_bootstrap)
        await admin.start()
        try:
            names = [s.name for s in all_topics(stack_settings)]
            return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}
        finally:
            await admin.close()

    described = asyncio.run(describe())
    assert described == {s.name: s.partitions for s in all_topics(stack_settings)}
    assert described[stack_settings.topic(ORDER_EVENTS)] == stack_settings.partitions
    # Idempotent: a second run creates nothing and raises nothing.
    assert ensure_topics(stack_settings) == all_topics(stack_settings)


def test_produce_and_consume_with_a_consumer_group(stack_settings: Settings) -> None:
    topic = stack_settings.topic(ORDER_EVENTS)
    sent = {f"order-{i}".encode(): f"value-{i}".encode() for i in range(50)}

    async def roundtrip() -> dict[bytes, bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=stack_settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for key, value in sent.items():
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()
        group = f"g-{uuid.uuid4().hex[:8]}"
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=stack_settings.kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        got: dict[bytes, bytes] = {}
        try:
            async with asyncio.timeout(60):
                while len(got) < len(sent):
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        got.update((r.key, r.value) for r in records)
            await consumer.commit()
            committed = 0
            for tp in consumer.assignment():
                committed += await consumer.committed(tp) or 0
            assert committed == len(sent)
        finally:
            await consumer.stop()
        return got

    assert asyncio.run(roundtrip()) == sent


def test_influx_write_and_query_back(stack_settings: Settings) -> None:
    url, db = stack_settings.influx_url, stack_settings.influx_db
    lines = "\n".join(f"probe,region=r{i % 3} value={i}i {1_700_000_000_000_000_000 + i}" for i in range(100))
    response = httpx.post(f"{url}/write", params={"db": db, "precision": "ns"}, content=lines, timeout=10)
    assert response.status_code == 204, response.text
    result = httpx.get(
        f"{url}/query", params={"db": db, "q": 'SELECT count("value"), sum("value") FROM probe'}, timeout=10
    ).json()
    count, total = result["results"][0]["series"][0]["values"][0][1:]
    assert (count, total) == (100, sum(range(100)))
