"""Dead letters of the worker's Faust agents (alerting, war-room views): a record an agent
cannot use goes to ``order-events-dlq`` with its bytes and the reason, never dropped."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from stream.contract import Problem, RejectCode, Rejection
from stream.dlq import SourceCoordinates, dead_letter
from stream.dlq import encode as encode_dead_letter
from stream.sinks.outbox import Outbox, OutRecord
from stream.stage_api import SourceRecord

log = logging.getLogger(__name__)


def record_of(event: Any) -> SourceRecord:
    """A Faust event as a :class:`~stream.stage_api.SourceRecord` (raw key and value bytes)."""
    message = event.message
    headers = message.headers or ()
    if isinstance(headers, Mapping):
        headers = headers.items()
    return SourceRecord(
        message.topic,
        message.partition,
        message.offset,
        int(message.timestamp * 1000) if message.timestamp else None,
        message.key,
        message.value,
        tuple(headers),
    )


async def reject_event(producer: Outbox, dlq_topic: str, event: Any, code: RejectCode, problem: str) -> None:
    """Dead-letter the Faust ``event`` (its record kept whole) with ``code`` and ``problem``."""
    record = record_of(event)
    log.warning("record on %s offset %s dead-lettered: %s", record.topic, record.offset, problem)
    where = SourceCoordinates(record.topic, record.partition, record.offset, record.timestamp_ms)
    letter = dead_letter(
        Rejection(code, (Problem("", problem[:500]),)),
        where,
        record.key,
        record.value,
        record.headers,
        datetime.now(UTC),
    )
    await producer.send([OutRecord(dlq_topic, encode_dead_letter(letter), record.key, 0)])
