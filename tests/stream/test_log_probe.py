"""The log probe against the real broker: where the next record of a partition is."""

from __future__ import annotations

import asyncio

import pytest

from config.settings import Settings
from stream.log_probe import first_offset_from
from stream.topics import ORDER_EVENTS
from stream_harness import produce

pytestmark = pytest.mark.integration


def test_the_probe_finds_the_record_at_an_offset_and_nothing_past_the_end(stack_settings: Settings) -> None:
    topic = stack_settings.topic(ORDER_EVENTS)
    records = [(b"o-1", f"v{i}".encode()) for i in range(5)]  # one key: one partition
    (partition, count), = asyncio.run(produce(stack_settings, topic, records)).items()
    bootstrap = stack_settings.kafka_bootstrap

    async def probe(offset: int) -> int | None:
        return await first_offset_from(bootstrap, topic, partition, offset)

    assert count == 5
    assert asyncio.run(probe(0)) == 0
    assert asyncio.run(probe(3)) == 3
    assert asyncio.run(probe(5)) is None  # the end of the log: nothing there yet

