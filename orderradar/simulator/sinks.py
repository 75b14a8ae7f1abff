"""Where emissions go: the Kafka topic (aiokafka, batched) or a JSON Lines file."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from aiokafka import AIOKafkaProducer

from .emission import Emission


class Sink(Protocol):
    async def write(self, batch: Sequence[Emission]) -> None: ...

    async def close(self) -> None: ...


class JsonLinesSink:
    """One event per line, the exact bytes a Kafka record would carry; ``-`` is stdout."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        # Held open for the sink's life and closed in close(), hence no ``with``.
        self._file: BinaryIO = sys.stdout.buffer if self.path == "-" else open(self.path, "ab")  # noqa: SIM115
        self.written = 0

    async def write(self, batch: Sequence[Emission]) -> None:
        self._file.write(b"".join(e.value + b"\n" for e in batch))
        self.written += len(batch)

    async def close(self) -> None:
        self._file.flush()
        if self._file is not sys.stdout.buffer:
            self._file.close()


class KafkaSink:
    """Produces each emission to ``topic`` with key = order_id, value = the event JSON.

    The producer batches by itself (``linger_ms``); :meth:`write` waits until the batch
    is acknowledged, so a slow broker slows the simulator instead of piling up memory.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        linger_ms: int = 20,
        max_batch_bytes: int = 256 * 1024,
        acks: int | str = "all",
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            linger_ms=linger_ms,
            max_batch_size=max_batch_bytes,
            acks=acks,
            client_id="orderradar-simulator",
            **(security or {}),  # SASL/TLS: config.client_auth.kafka_auth
        )
        self.written = 0

    async def start(self) -> None:
        await self._producer.start()

    async def write(self, batch: Sequence[Emission]) -> None:
        futures = [await self._producer.send(self.topic, value=e.value, key=e.key) for e in batch]
        if futures:
            await asyncio.gather(*futures)
        self.written += len(batch)

    async def close(self) -> None:
        await self._producer.stop()  # flushes what is still buffered
