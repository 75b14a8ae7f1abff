"""Ask the broker where the next record of a partition is, from a given offset.

Used when records a worker expected never reached it (see :mod:`stream.partition_cursor`):
if the broker holds a record at the expected offset, it was lost on the way and is read
again; if the first record is further on, the log has a hole there (transaction markers,
compaction) and the worker moves past it. A short-lived consumer without a group: it
commits nothing and joins no rebalance.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError


class LogProbeError(RuntimeError):
    """The broker could not be asked."""


async def first_offset_from(bootstrap: str, topic: str, partition: int, offset: int,
                            timeout_s: float = 3.0, security: Mapping[str, Any] | None = None) -> int | None:
    """The offset of the first record at or after ``offset``; ``None`` if none came within
    ``timeout_s`` (the end of the log). Below the log start (retention), the first record.

    It reads instead of asking for the end offset: the embedded broker's ListOffsets answer
    is not the end of the log (it counts record batches).
    """
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                group_id=None, auto_offset_reset="earliest", **(security or {}))
    try:
        await consumer.start()
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            batch = await consumer.getmany(tp, timeout_ms=max(1, int(min(left, 0.5) * 1000)), max_records=1)
            records = batch.get(tp)
            if records:
                # Past the end, the consumer resets to the log start: nothing there yet.
                return int(records[0].offset) if records[0].offset >= offset else None
        return None
    except KafkaError as exc:
        raise LogProbeError(f"{topic}[{partition}] from offset {offset}: {exc!r}") from exc
    finally:
        await consumer.stop()
