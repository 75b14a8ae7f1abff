"""The gateway's Kafka producer: events to ``order-events``, commands and records elsewhere.

``acks="all"``: a publish returns only once the broker has the record, so the ingest API
answers 2xx only for acknowledged events. The producer connects in the background and
keeps retrying, so the web tier starts (and reports not-ready) while the broker is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from config.client_auth import kafka_auth
from config.settings import Settings
from stream.contract import OrderEvent
from stream.topics import ORDER_EVENTS

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The broker did not acknowledge in time (or is unreachable); safe to retry the call,
    since events are deduplicated downstream by ``event_id``."""


class BusPublisher:
    def __init__(self, settings: Settings, timeout_s: float) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self.last_error: str | None = None

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def run(self) -> None:
        """Connect, retrying with capped backoff until it works (runs as a background task)."""
        delay = 0.5
        while self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.kafka_bootstrap,
                acks="all",
                linger_ms=2,
                request_timeout_ms=int(self.timeout_s * 1000),
                client_id=f"{self.settings.app_id}-web",
                **kafka_auth(self.settings),
            )
            try:
                await producer.start()
            except KafkaError as exc:
                self.last_error = f"cannot connect to Kafka at {self.settings.kafka_bootstrap}: {exc}"
                log.warning("%s; retrying in %.1fs", self.last_error, delay)
                await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self._producer = producer
            self.last_error = None
            log.info("producer connected bootstrap=%s", self.settings.kafka_bootstrap)

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise PublishError(self.last_error or "not connected to Kafka yet")
        return self._producer

    async def _send_all(self, records: Sequence[tuple[str, bytes, bytes]]) -> None:
        producer = self._require()
        try:
            async with asyncio.timeout(self.timeout_s):
                futures = [await producer.send(topic, value, key=key) for topic, key, value in records]
                await asyncio.gather(*futures)
        except TimeoutError:
            raise PublishError(
                f"broker did not acknowledge {len(records)} record(s) within {self.timeout_s:g}s"
            ) from None
        except KafkaError as exc:
            raise PublishError(f"broker refused the records: {exc}") from None

    async def publish_events(self, events: Sequence[OrderEvent]) -> None:
        """Every event, keyed by ``order_id``, in canonical form; returns once all are acked."""
        topic = self.settings.topic(ORDER_EVENTS)
        await self._send_all([(topic, e.order_id.encode(), e.to_json()) for e in events])

    async def publish_json(self, logical_topic: str, key: str, record: dict[str, Any]) -> None:
        await self._send_all([(self.settings.topic(logical_topic), key.encode(), orjson.dumps(record))])
