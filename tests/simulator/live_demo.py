"""Pieces of the live demo tests: the simulator and worker as processes, and a consumer
thread that keeps every record of some topics (read from the beginning) as it arrives."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from config.settings import Settings, to_env
from orderradar.devstack.process import ManagedProcess

REPO = Path(__file__).resolve().parents[2]


def cli(name: str, settings: Settings, log_dir: Path, *argv: str) -> ManagedProcess:
    """``orderradar <argv>`` as a child process with ``settings`` in its environment."""
    env = {**os.environ, **to_env(settings), "PYTHONUNBUFFERED": "1"}
    return ManagedProcess(
        name, [sys.executable, "-m", "orderradar.cli", *argv], log_dir / f"{name}.log", env=env, cwd=REPO
    ).start()


class TopicTail:
    """Every record of ``topics`` from the beginning on, as (Kafka timestamp ms, value)."""

    def __init__(self, settings: Settings, topics: list[str], *, parse: bool = True) -> None:
        self.settings = settings
        self.topics = topics
        self.parse = parse
        self._records: dict[str, list[tuple[int, Any]]] = {t: [] for t in topics}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.settings.kafka_bootstrap,
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
        )
        try:
            await consumer.start()
            while not self._stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                for tp, records in batches.items():
                    values = [
                        (r.timestamp, orjson.loads(r.value) if self.parse else r.value) for r in records if r.value
                    ]
                    with self._lock:
                        self._records[tp.topic].extend(values)
        except BaseException as exc:  # noqa: B036 - reported to the test by records()
            self._error = exc
        finally:
            await consumer.stop()

    def records(self, topic: str) -> list[tuple[int, Any]]:
        if self._error is not None:
            raise RuntimeError(f"consumer of {self.topics} failed") from self._error
        with self._lock:
            return list(self._records[topic])

    def values(self, topic: str) -> list[Any]:
        return [value for _, value in self.records(topic)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
