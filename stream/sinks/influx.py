"""Writing line protocol to InfluxDB's 1.x HTTP API, and replaying what could not be written.

:class:`InfluxWriter` posts ``/write?db=..&precision=ns`` with httpx: at most
:data:`MAX_LINES_PER_REQUEST` lines per request, a few requests in flight, an explicit
timeout on every request, bounded retries with exponential backoff and full jitter,
honouring ``Retry-After`` on 429/5xx, retrying network errors and timeouts. It never
raises for InfluxDB trouble and never drops anything: :meth:`InfluxWriter.write` returns
the chunks it could not write with the reason (:class:`stream.core.dlq.InfluxFailure`), and the
worker puts them on ``influx-dlq`` before it acknowledges the Kafka offsets of the batch.

A 4xx other than 429, 401 and 403 means our points are wrong (a bug): it is logged at ERROR
with InfluxDB's message and the chunk is dead-lettered as ``rejected`` (kept, not retried).
401 and 403 are refused credentials: logged at ERROR and retried like an outage, so the
chunks stay replayable once the credentials are fixed. Credentials go in a basic-auth
header (``config.client_auth.influx_auth``), never in the URL.

After a write exhausts its retries the writer *opens its circuit* for a cool-down
(doubling up to a cap while InfluxDB stays down): writes in that time fail at once as
``circuit_open``, so an outage costs the pipeline one retry budget, not one per batch, and
the stream keeps flowing into the dead-letter topic.

:class:`InfluxReplayer` consumes ``influx-dlq`` in its own consumer group and rewrites each
replayable chunk, retrying with capped backoff for as long as it takes, committing a
record's offset only after InfluxDB acknowledged it. Points are idempotent (deterministic
timestamps and tags), so replaying a chunk twice, or after a newer write, is harmless.

Fencing: the pipeline passes its outbox's fence (the worker's membership lease,
:meth:`stream.kafka.batch_source.BatchSource.fence`) to :meth:`InfluxWriter.write`. It is checked
before every attempt, retries included, and again right before the request's headers and
its body are written to the socket (httpcore's ``trace`` events: one loop turn between the
check and the write); when it refuses, the write is abandoned (its other chunks cancelled)
and :class:`~stream.sinks.outbox.OutboxFenced` raised, so a worker that was frozen past its
session does not overwrite its successor's minute aggregates with a late retry. Not
covered: a freeze in that loop turn, or while a large body is still being written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from alerting.backoff import RetryPolicy, parse_retry_after
from stream.core.dlq import InfluxFailure, chunk_lines, influx_headers, influx_reason
from stream.sinks.outbox import Outbox, OutRecord
from stream.sinks.sink import Fence, unfenced

log = logging.getLogger(__name__)

#: InfluxDB's recommended batch size for 1.x.
MAX_LINES_PER_REQUEST = 5000


#: How hard the writer tries: 4 attempts, full-jitter backoff from 0.2 s capped at 5 s; after
#: a write exhausted them its circuit opens for 2 s, doubling up to 30 s (``later_*``).
INFLUX_RETRY = RetryPolicy(
    attempts=4, base_delay=0.2, max_delay=5.0, jitter=1.0, later_base_delay=2.0, later_max_delay=30.0
)


@dataclass(frozen=True)
class FailedChunk:
    lines: Sequence[str]
    reason: InfluxFailure
    attempts: int
    error: str
    #: Index of the chunk's first line in the lines given to :meth:`InfluxWriter.write`.
    start: int = 0


@dataclass
class WriteReport:
    written: int = 0
    failed: list[FailedChunk] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class WriterStats:
    requests: int = 0
    retries: int = 0
    lines_written: int = 0
    chunks_failed: int = 0
    circuit_opened: int = 0


class InfluxWriter:
    """Batched, retrying, never-dropping writer for one database."""

    def __init__(
        self,
        url: str,
        db: str,
        *,
        timeout_s: float = 10.0,
        auth: httpx.Auth | None = None,
        policy: RetryPolicy = INFLUX_RETRY,
        max_lines: int = MAX_LINES_PER_REQUEST,
        concurrency: int = 2,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url.rstrip("/")
        self.db = db
        self.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0))
        self.policy = policy
        self.max_lines = max_lines
        self._params = {"db": db, "precision": "ns"}
        # Basic auth (``config.client_auth.influx_auth``): a header, never in the URL.
        self._client = httpx.AsyncClient(timeout=self.timeout, auth=auth)
        self._semaphore = asyncio.Semaphore(concurrency)
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._clock = clock
        self._open_until = 0.0
        self._cooldown = policy.later_base_delay
        self.stats = WriterStats()

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def circuit_open(self) -> bool:
        return self._clock() < self._open_until

    async def write(self, lines: Sequence[str], *, fence: Callable[[], None] | None = None) -> WriteReport:
        """Write all lines; return what was written and what failed, with why.

        ``fence``: checked right before every request (retries too); when it raises
        :class:`~stream.sinks.outbox.OutboxFenced` the chunks still in flight are cancelled and
        the exception propagates (nothing more of these lines is sent).
        """
        report = WriteReport()
        if not lines:
            return report
        if fence is not None:
            fence()
        starts = range(0, len(lines), self.max_lines)
        chunks = [lines[i : i + self.max_lines] for i in starts]
        if self.circuit_open:
            report.failed = [
                FailedChunk(c, InfluxFailure.CIRCUIT_OPEN, 0, "circuit open after recent failures", i)
                for i, c in zip(starts, chunks, strict=True)
            ]
            self.stats.chunks_failed += len(chunks)
            return report
        results = await gather_cancelling(
            *(self._write_chunk(c, i, fence) for i, c in zip(starts, chunks, strict=True))
        )
        for chunk, failure in zip(chunks, results, strict=True):
            if failure is None:
                report.written += len(chunk)
            else:
                report.failed.append(failure)
        self.stats.lines_written += report.written
        self.stats.chunks_failed += len(report.failed)
        return report

    def _backoff(self, attempt: int) -> float:
        return self.policy.delay(attempt, self._rng.random())  # INFLUX_RETRY's jitter 1: full jitter

    def _trip(self, hint_s: float | None) -> None:
        cooldown = max(self._cooldown, hint_s or 0.0)
        self._open_until = self._clock() + cooldown
        self._cooldown = min(self._cooldown * self.policy.multiplier, self.policy.later_max_delay)
        self.stats.circuit_opened += 1
        log.warning("influx circuit open for %.1fs", cooldown)

    async def _write_chunk(
        self, chunk: Sequence[str], start: int = 0, fence: Callable[[], None] | None = None
    ) -> FailedChunk | None:
        body = "\n".join(chunk).encode()
        error = ""
        attempt = 0
        async with self._semaphore:
            while True:
                attempt += 1
                retry_after: float | None = None
                if fence is not None:
                    fence()  # before every attempt: a retry after a freeze must not land late
                self.stats.requests += 1
                try:
                    response = await self._client.post(
                        f"{self.url}/write",
                        params=self._params,
                        content=body,
                        headers={"Content-Type": "text/plain; charset=utf-8"},
                        extensions={} if fence is None else {"trace": _wire_fence(fence)},
                    )
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                else:
                    status = response.status_code
                    if 200 <= status < 300:
                        self._cooldown = self.policy.later_base_delay
                        return None
                    text = response.text[:300]
                    if status == 429 or status >= 500:
                        error = f"HTTP {status}: {text}"
                        retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
                    elif status in (401, 403):
                        # Our credentials, not our points: kept replayable until an operator
                        # fixes ORDERRADAR_INFLUX_USERNAME/_PASSWORD or the user's grants.
                        error = f"HTTP {status}: InfluxDB refused the credentials of db {self.db}: {text}"
                        log.error("%s", error)
                    else:
                        log.error(
                            "InfluxDB rejected %d points of db %s with HTTP %d (a bug in the points, "
                            "dead-lettered as rejected): %s",
                            len(chunk),
                            self.db,
                            status,
                            text,
                        )
                        return FailedChunk(chunk, InfluxFailure.REJECTED, attempt, f"HTTP {status}: {text}", start)
                if attempt >= self.policy.attempts or (retry_after is not None and retry_after > self.policy.max_delay):
                    self._trip(retry_after)
                    log.warning("influx write of %d lines failed after %d attempts: %s", len(chunk), attempt, error)
                    return FailedChunk(chunk, InfluxFailure.RETRIES_EXHAUSTED, attempt, error, start)
                self.stats.retries += 1
                await self._sleep(retry_after if retry_after is not None else self._backoff(attempt))


#: httpcore's trace events right before a request's headers, and its body, are written.
_WIRE_EVENTS = frozenset({"http11.send_request_headers.started", "http11.send_request_body.started"})


def _wire_fence(fence: Callable[[], None]) -> Callable[[str, Mapping[str, Any]], Awaitable[None]]:
    """An httpx ``trace`` extension checking ``fence`` right before the socket writes (a
    connection may take a while to open after the attempt's own check)."""

    async def trace(event: str, info: Mapping[str, Any]) -> None:
        if event in _WIRE_EVENTS:
            fence()

    return trace


async def gather_cancelling(*aws: Coroutine[Any, Any, Any]) -> list[Any]:
    """Await all, results in order; the first exception (e.g. a fenced write) cancels the
    others and is raised as itself (``TaskGroup`` would wrap it in an ``ExceptionGroup``,
    which callers catching :class:`~stream.sinks.outbox.OutboxFenced` would not see)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(a) for a in aws]
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return [t.result() for t in tasks]


class InfluxSink:
    """A batch's points to InfluxDB within its fence, and what InfluxDB did not take to
    ``influx-dlq`` (:meth:`dead_letter`)."""

    def __init__(self, writer: InfluxWriter, outbox: Outbox, dlq_topic: str) -> None:
        self.writer = writer
        self.outbox = outbox
        self.dlq_topic = dlq_topic

    async def write(self, items: Sequence[str], fence: Fence) -> WriteReport:
        """A fenced worker writes nothing: its minute aggregates (and stages' minute lines)
        could overwrite its successor's. The producer's fence is checked again before every
        attempt (retries run for up to a minute)."""
        if fence.fenced:
            return WriteReport()
        return await self.writer.write(items, fence=None if fence.check is unfenced else fence.check)

    async def dead_letter(self, report: WriteReport, points: int, source_partition: int) -> int:
        """Put the failed chunks' lines among the first ``points`` on ``influx-dlq`` (the
        lines after them are open aggregate minutes: they stay pending instead, see
        :mod:`stream.core.aggregates`), spread by ``source_partition``; the lines dead-lettered."""
        records: list[OutRecord] = []
        dead = 0
        for failed in report.failed:
            lost = list(failed.lines[: max(0, points - failed.start)])
            if not lost:
                continue
            dead += len(lost)
            headers = tuple(influx_headers(failed.reason, failed.attempts, failed.error))
            partition = source_partition % len(await self.outbox.partitions(self.dlq_topic))
            records.extend(OutRecord(self.dlq_topic, chunk, None, partition, headers) for chunk in chunk_lines(lost))
            if failed.reason is InfluxFailure.REJECTED:
                log.error("dead-lettered %d rejected points to %s", len(lost), self.dlq_topic)
        await self.outbox.send(records)
        return dead


class InfluxReplayer:
    """Rewrites ``influx-dlq`` chunks into InfluxDB, for as long as it takes."""

    def __init__(
        self,
        writer: InfluxWriter,
        bootstrap: str,
        topic: str,
        group_id: str,
        *,
        max_backoff_s: float = 15.0,
        session_timeout_ms: int = 10_000,
        rng: random.Random | None = None,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self.writer = writer
        #: SASL/TLS options of the consumer (``config.client_auth.kafka_auth``).
        self.security = dict(security or {})
        self.bootstrap = bootstrap
        self.topic = topic
        self.group_id = group_id
        #: Between attempts at one chunk: 0.5 s doubling up to ``max_backoff_s``, half jittered.
        self.backoff = RetryPolicy(base_delay=0.5, max_delay=max_backoff_s, jitter=0.5)
        self.session_timeout_ms = session_timeout_ms
        self._rng = rng or random.Random()
        self._stopping = asyncio.Event()
        self.replayed_chunks = 0
        self.skipped_chunks = 0

    def stop(self) -> None:
        self._stopping.set()

    async def _pause(self, seconds: float) -> None:
        """Back off, but wake at once when stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(1000, self.session_timeout_ms // 3),
            max_poll_records=20,
            **self.security,
        )
        while not self._stopping.is_set():
            try:
                await consumer.start()
                break
            except KafkaError as exc:
                log.warning("influx replayer cannot start its consumer (%s); retrying", exc)
                await self._pause(2.0)
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    for record in records:
                        if not await self._replay(record.value, list(record.headers), tp, record.offset):
                            return  # stopping: the offset stays uncommitted
                        await consumer.commit({TopicPartition(tp.topic, tp.partition): record.offset + 1})
        finally:
            await consumer.stop()

    async def _replay(
        self, value: bytes | None, headers: list[tuple[str, bytes]], tp: TopicPartition, offset: int
    ) -> bool:
        reason = influx_reason(headers)
        if reason is None or not reason.replayable or not value:
            self.skipped_chunks += 1
            log.error(
                "influx-dlq %s[%d]@%d not replayed (reason %s): inspect it", tp.topic, tp.partition, offset, reason
            )
            return True
        lines = value.decode().split("\n")
        failures = 0
        while not self._stopping.is_set():
            report = await self.writer.write(lines)
            if report.ok:
                self.replayed_chunks += 1
                log.info("replayed %d lines from influx-dlq %s[%d]@%d", len(lines), tp.topic, tp.partition, offset)
                return True
            if all(f.reason is InfluxFailure.REJECTED for f in report.failed):
                self.skipped_chunks += 1
                return True
            failures += 1
            await self._pause(self.backoff.delay(failures, self._rng.random()))
        return False
