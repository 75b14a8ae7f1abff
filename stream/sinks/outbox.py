"""Batched producing with one dedicated aiokafka producer (``acks=all``).

The worker hands :meth:`Outbox.send` everything one batch produces for a set of topics
(dead letters, order updates, war-room updates, changelog entries) and awaits it: records
are grouped per topic partition, packed into record batches with aiokafka's batch API
(``create_batch`` / ``send_batch``: one append per record instead of one future and one
task per record, which is what ``producer.send`` costs) and sent concurrently; the call
returns only when every record is acknowledged by the broker, or raises
:class:`OutboxError` once retrying failed batches has run past the deadline.

Records without an explicit partition are placed with the same murmur2 partitioner as
Kafka's Java client and Faust, so ``order-updates`` for an order land in the partition of
the same number as its ``order-events`` (given equal partition counts).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.client import ConnectionGroup
from aiokafka.conn import CloseReason
from aiokafka.errors import KafkaError, NodeNotReadyError, RequestTimedOutError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.protocol.produce import ProduceRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutRecord:
    topic: str
    value: bytes | None
    key: bytes | None = None
    #: ``None``: by key (murmur2); keyless records go to the topic's first partition.
    partition: int | None = None
    headers: Sequence[tuple[str, bytes]] = ()


class OutboxError(RuntimeError):
    """Records could not be delivered before the deadline (the broker is unreachable)."""


class OutboxFenced(RuntimeError):
    """The outbox's fence refused a write: the writer may have been replaced (see ``fence``)."""


class _WireFenced(KafkaError):  # type: ignore[misc]  # aiokafka ships no types
    """The fence refused a produce request at the socket (fails its batches, no retry)."""

    retriable = False


def _retrieve(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()


def _fence_produce_requests(producer: AIOKafkaProducer, fence: Callable[[], None]) -> None:
    """Check ``fence`` right before each produce request is written to the broker's socket.

    aiokafka's sender writes a request some loop turns after ``send_batch`` queued it; a
    process frozen in between (SIGSTOP, a VM pause) would write it on waking, late. Here the
    check and the (synchronous) socket write have no await between them: a freeze in that
    window (microseconds) is the only one left. Mirrors ``AIOKafkaClient.send`` (0.14).
    """
    client = producer.client
    send = client.send

    async def send_fenced(node_id: int, request: Any, *, group: ConnectionGroup = ConnectionGroup.DEFAULT) -> Any:
        if not isinstance(request, ProduceRequest):
            return await send(node_id, request, group=group)
        if not await client.ready(node_id, group=group):
            raise NodeNotReadyError(f"Attempt to send a request to node which is not ready (node id {node_id}).")
        try:
            fence()
        except OutboxFenced as exc:
            raise _WireFenced(str(exc)) from exc
        conn = client._conns[(node_id, group)]  # the write itself, see above
        future = conn.send(request, expect_response=request.required_acks != 0)
        try:
            return await future
        except TimeoutError as exc:
            conn.close(reason=CloseReason.CONNECTION_TIMEOUT)
            raise RequestTimedOutError() from exc

    client.send = send_fenced


class Outbox:
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "orderradar-outbox",
        max_batch_bytes: int = 512 * 1024,
        max_request_bytes: int = 4 * 1024 * 1024,
        request_timeout_ms: int = 30_000,
        deadline_s: float = 120.0,
        security: Mapping[str, Any] | None = None,
        fence: Callable[[], None] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        #: Called right before each record batch is handed to the producer and again right
        #: before each produce request is written to the socket; raises
        #: :class:`OutboxFenced` when this process may no longer write (the worker's
        #: membership lease, :meth:`stream.kafka.batch_source.BatchSource.fence`). Set it before
        #: :meth:`start`.
        self.fence = fence
        self.deadline_s = deadline_s
        self._producer_options = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "acks": "all",
            "max_batch_size": max_batch_bytes,
            "max_request_size": max_request_bytes,
            "request_timeout_ms": request_timeout_ms,
            "linger_ms": 0,
            # SASL/TLS (``config.client_auth.kafka_auth``); empty on the local stack.
            **(security or {}),
        }
        self._started: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[str, list[int]] = {}
        self.records_sent = 0
        #: Offset of the last record this outbox wrote per (topic, partition): the worker
        #: compares it with the changelog's end to detect writes of another owner.
        self.last_offsets: dict[tuple[str, int], int] = {}

    async def start(self) -> None:
        # aiokafka binds a producer to the running loop, so it is created here.
        producer = AIOKafkaProducer(**self._producer_options)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()  # a failed start leaves its connections open otherwise
            raise
        if self.fence is not None:
            _fence_produce_requests(producer, self.fence)
        self._started = producer

    async def stop(self) -> None:
        if self._started is not None:
            await self._started.stop()
            self._started = None

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._started is None:
            raise RuntimeError("outbox used before start()")
        return self._started

    async def partitions(self, topic: str) -> list[int]:
        known = self._partitions.get(topic)
        if known is None:
            known = sorted(await self._producer.partitions_for(topic))
            self._partitions[topic] = known
        return known

    async def partition_for(self, topic: str, key: bytes | None) -> int:
        partitions = await self.partitions(topic)
        if key is None:
            return partitions[0]
        return int(self._partitioner(key, partitions, partitions))

    async def send(self, records: Sequence[OutRecord], *, exact_end_offsets: bool = False) -> None:
        """Deliver every record (``acks=all``) or raise :class:`OutboxError`.

        ``exact_end_offsets``: send the last record of each partition as a record batch of
        its own. The embedded broker (Tansu, memory engine) reports a partition's end offset
        (ListOffsets "latest") as the base offset of its last record batch + 1, and Faust's
        table recovery reads a changelog only up to that end offset: with a one-record last
        batch the reported end offset is exact. Costs one small extra batch per partition.
        """
        if not records:
            return
        groups: dict[tuple[str, int], list[OutRecord]] = {}
        for record in records:
            partition = record.partition
            if partition is None:
                partition = await self.partition_for(record.topic, record.key)
            groups.setdefault((record.topic, partition), []).append(record)
        pending = list(groups.items())
        deadline = time.monotonic() + self.deadline_s
        delay = 0.2
        while True:
            failed = await self._send_groups(pending, exact_end_offsets)
            if not failed:
                self.records_sent += len(records)
                return
            if time.monotonic() > deadline:
                raise OutboxError(
                    f"{sum(len(r) for _, r in failed)} records undelivered after {self.deadline_s:.0f}s: {failed[0][0]}"
                )
            log.warning("retrying %d record groups after produce errors", len(failed))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            pending = failed

    async def _send_groups(
        self, groups: list[tuple[tuple[str, int], list[OutRecord]]], exact_end_offsets: bool = False
    ) -> list[tuple[tuple[str, int], list[OutRecord]]]:
        """Send each group as one or more record batches; return the parts that failed."""
        sent: list[tuple[tuple[str, int], list[OutRecord], asyncio.Future[object]]] = []
        failed: list[tuple[tuple[str, int], list[OutRecord]]] = []
        for (topic, partition), records in groups:
            start = 0
            while start < len(records):
                batch = self._producer.create_batch()
                end = start
                limit = len(records) - 1 if exact_end_offsets and start < len(records) - 1 else len(records)
                while end < limit:
                    r = records[end]
                    if batch.append(key=r.key, value=r.value, timestamp=None, headers=list(r.headers)) is None:
                        break
                    end += 1
                batch.close()
                part = records[start:end]
                if self.fence is not None:
                    try:
                        self.fence()
                    except OutboxFenced:
                        for _, _, queued in sent:  # they fail at the socket's fence; nobody waits for them
                            queued.add_done_callback(_retrieve)
                        raise
                try:
                    future = await self._producer.send_batch(batch, topic, partition=partition)
                except KafkaError as exc:
                    log.warning("cannot queue %d records for %s[%d]: %r", len(part), topic, partition, exc)
                    failed.append(((topic, partition), part))
                else:
                    sent.append(((topic, partition), part, future))
                start = end
        results = await asyncio.gather(*(f for _, _, f in sent), return_exceptions=True)
        for (tp, part, _), result in zip(sent, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, _WireFenced):
                    raise OutboxFenced(str(result)) from result
                if not isinstance(result, KafkaError):
                    raise result
                log.warning("produce to %s[%d] failed: %r", tp[0], tp[1], result)
                failed.append((tp, part))
            else:  # RecordMetadata: the batch's base offset
                last = result.offset + len(part) - 1  # type: ignore[attr-defined]
                if last > self.last_offsets.get(tp, -1):
                    self.last_offsets[tp] = last
        return failed
