"""What the worker's Faust agents (alerting, war-room views) share: their raw-bytes source
topic, their table with its compacted changelog, and the consumption of JSON records where
a record an agent cannot use goes to ``order-events-dlq`` with its bytes and the reason,
never dropped, and any other failure stops the worker without acknowledging (crash-only)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from stream.contract import Problem, RejectCode, Rejection
from stream.core.dlq import SourceCoordinates, dead_letter
from stream.core.dlq import encode as encode_dead_letter
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


def raw_topic(app: Any, *names: str, partitions: int) -> Any:
    """A Faust topic of raw key and value bytes (an agent decodes them itself)."""
    return app.topic(
        *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw", partitions=partitions
    )


def agent_table(app: Any, name: str, changelog: str, partitions: int) -> Any:
    """A Faust table with its JSON values changelogged to a compacted topic of ours."""
    topic = app.topic(
        changelog,
        key_type=str,
        key_serializer="raw",
        value_serializer="json",
        partitions=partitions,
        compacting=True,
        internal=True,
        allow_empty=True,
        acks=False,
    )
    return app.Table(name, partitions=partitions, key_type=str, changelog_topic=topic)


def install_json_agent(
    app: Any,
    source: Any,
    name: str,
    handle: Callable[[Any, Any], Awaitable[None]],
    *,
    refused: tuple[type[Exception], ...],
    problem: Callable[[Exception], str],
    producer: Outbox,
    dlq_topic: str,
    on_fatal: Callable[[BaseException], None],
) -> None:
    """Register an agent on ``source`` handing each record's JSON value to ``handle(message,
    value)``. A record that is not JSON, or that ``handle`` refuses with one of ``refused``
    (described by ``problem``), is dead-lettered; any other failure stops the worker."""

    async def consume(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            try:
                value = orjson.loads(message.value)
            except orjson.JSONDecodeError as exc:
                await reject_event(producer, dlq_topic, event, RejectCode.NOT_JSON, str(exc))
                continue
            try:
                await handle(message, value)
            except refused as exc:
                await reject_event(producer, dlq_topic, event, RejectCode.SCHEMA, problem(exc))
            except asyncio.CancelledError:
                raise  # the worker stops
            except BaseException as exc:  # noqa: B036 - state or outputs failed: crash-only
                log.critical("agent %s failed; stopping without acknowledging", name, exc_info=exc)
                on_fatal(exc)
                raise

    app.agent(source, name=name, concurrency=1)(consume)
