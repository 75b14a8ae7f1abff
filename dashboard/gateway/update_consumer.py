"""Reading whole topics into this instance: every partition, no consumer group.

Each web instance must see every update (its clients may watch any order), so it assigns
itself all partitions instead of joining a group, and commits nothing. It starts either at
the beginning (``tracking-tokens``: every grant matters) or a little before the end
("a recent position": ``lookback`` records per partition, or per topic, to warm the caches).

The embedded broker answers ListOffsets(latest) with the last *batch's* base offset + 1,
which can be below the true end; that only means reading a bit more history. Catch-up and
lag use the high watermark from fetch responses, which is right on both brokers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from dashboard.gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

RecordHandler = Callable[[ConsumerRecord[bytes, bytes]], None]


class StartAt(Enum):
    EARLIEST = "earliest"
    RECENT = "recent"


class MissingTopics(RuntimeError):
    """Some topics do not exist yet (``orderradar topics`` creates them)."""


class TopicReader:
    """Consumes ``topics`` forever, calling ``handle`` for each record, reconnecting on errors."""

    def __init__(
        self,
        name: str,
        bootstrap: str,
        topics: Sequence[str],
        handle: RecordHandler,
        metrics: GatewayMetrics,
        *,
        start: StartAt,
        lookback: int = 0,
        lookback_by_topic: Mapping[str, int] | None = None,
        fetch_max_wait_ms: int = 50,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        #: SASL/TLS options (``config.client_auth.kafka_auth``).
        self.security = dict(security or {})
        self.bootstrap = bootstrap
        self.topics = tuple(topics)
        self.handle = handle
        self.metrics = metrics
        self.start = start
        self.lookback = lookback
        self.lookback_by_topic = dict(lookback_by_topic or {})
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.assigned = False
        #: True once every partition was read up to the high watermark seen at start.
        self.caught_up = False
        self.last_error: str | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._next: dict[TopicPartition, int] = {}

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                consumer = await self._open()
                delay = 0.5
                await self._consume(consumer)
            except (KafkaError, MissingTopics) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("reader %s: %s; retrying in %.1fs", self.name, self.last_error, delay)
            finally:
                await self._close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _open(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            client_id=f"orderradar-web-{self.name}",
            **self.security,
        )
        self._consumer = consumer
        await consumer.start()
        available = await consumer.topics()
        missing = [t for t in self.topics if t not in available]
        if missing:
            raise MissingTopics(f"topics {missing} do not exist (run: orderradar topics create)")
        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        if self.start is StartAt.EARLIEST:
            await consumer.seek_to_beginning(*partitions)
        else:
            ends = await consumer.end_offsets(partitions)
            begins = await consumer.beginning_offsets(partitions)
            for tp in partitions:
                lookback = self.lookback_by_topic.get(tp.topic, self.lookback)
                consumer.seek(tp, max(begins[tp], ends[tp] - lookback))
        self._next = {tp: await consumer.position(tp) for tp in partitions}
        self.assigned = True
        self.last_error = None
        log.info(
            "reader %s assigned %d partitions of %s from %s", self.name, len(partitions), self.topics, self.start.value
        )
        return consumer

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            # Poll briefly until caught up, so readiness does not wait out an idle poll.
            batches = await consumer.getmany(timeout_ms=1000 if self.caught_up else 50, max_records=2000)
            for tp, records in batches.items():
                for record in records:
                    self.metrics.records_in.inc(topic=tp.topic)
                    try:
                        self.handle(record)
                    except ValueError as exc:  # includes JSON and pydantic validation errors
                        self.metrics.bad_records.inc(topic=tp.topic)
                        log.warning(
                            "reader %s: unusable record %s[%d]@%d: %s",
                            self.name,
                            tp.topic,
                            tp.partition,
                            record.offset,
                            str(exc)[:300],
                        )
                if records:
                    self._next[tp] = records[-1].offset + 1
            if not self.caught_up:
                self.caught_up = self._at_end(consumer)

    def _at_end(self, consumer: AIOKafkaConsumer) -> bool:
        for tp, position in self._next.items():
            highwater = consumer.highwater(tp)
            if highwater is None or position < highwater:
                return False
        return True

    def lag(self) -> dict[str, int]:
        """Records behind the last known high watermark, per topic."""
        consumer = self._consumer
        out = {topic: 0 for topic in self.topics}
        if consumer is None or not self.assigned:
            return out
        for tp, position in self._next.items():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                out[tp.topic] += max(0, highwater - position)
        return out

    async def probe(self, timeout_s: float) -> str | None:
        """``None`` when the broker answers a metadata request, else the reason."""
        consumer = self._consumer
        if consumer is None or not self.assigned:
            return self.last_error or f"reader {self.name} not assigned yet"
        try:
            async with asyncio.timeout(timeout_s):
                await consumer.topics()
        except TimeoutError:
            return f"broker {self.bootstrap} did not answer within {timeout_s:g}s"
        except KafkaError as exc:
            return f"broker {self.bootstrap}: {exc}"
        return None

    async def _close(self) -> None:
        self.assigned = False
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
