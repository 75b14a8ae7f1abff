"""The API the worker's batch stages plug into (:class:`stream.pipeline.Pipeline` runs them).

A :class:`Stage` has a ``name`` and ``async def process(self, ctx: BatchContext)``. In
``process`` a stage reads ``ctx.accepted`` (event, SKU change: outcome, before/after state,
illegal reason), ``ctx.accepted_by_partition()``, ``ctx.dead_letters``,
``ctx.order(order_id)``, and adds ``ctx.lines`` (InfluxDB points), ``ctx.emit(...)``
(messages), ``ctx.update_order(order.with_extension(name, value))`` (per-order state,
changelogged and shown in the order's snapshot) and ``ctx.stage_put/get/delete`` (keyed
stage state, changelogged, handed back to ``restore`` after a restart or rebalance).

Optional hooks are protocols of their own (:class:`RestoringStage`, :class:`TickingStage`,
:class:`BackgroundStage`, :class:`InstallingStage`): the pipeline and the worker call a hook
when the stage implements its protocol, and the type checker sees the signatures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from stream.contract import OrderEvent
from stream.core.aggregates import PartitionAggregates
from stream.core.dlq import DeadLetter
from stream.core.lifecycle import EventChange
from stream.core.order_state import OrderState, state_record
from stream.sinks.outbox import Outbox, OutRecord

#: Prefix of table keys holding stage state (``#`` cannot occur in an order id).
STAGE_KEY_PREFIX = "#"


@state_record
class SourceRecord:
    """One input record as the pipeline sees it (decoupled from Faust's event type)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@state_record
class Accepted:
    """A valid, new event and what it did to its SKU."""

    record: SourceRecord
    event: OrderEvent
    change: EventChange


@dataclass(frozen=True, slots=True)
class StageValue:
    """A stage's keyed state entry, stored in the worker's table beside the orders."""

    stage: str
    key: str
    partition: int
    data: Any


def stage_table_key(stage: str, key: str) -> str:
    return f"{STAGE_KEY_PREFIX}{stage}{STAGE_KEY_PREFIX}{key}"


def _unfenced() -> None:
    pass


def _owns_all(partition: int) -> bool:
    return True


class BatchContext:
    """What one batch did so far, and the handles stages use to add to it."""

    def __init__(
        self,
        now: datetime,
        records: Sequence[SourceRecord],
        store: Mapping[str, object],
        aggregates: Mapping[int, PartitionAggregates],
    ) -> None:
        #: Wall-clock time the batch was taken (UTC); event logic uses event time instead.
        self.now = now
        self.records = records
        self.accepted: list[Accepted] = []
        self.dead_letters: list[tuple[SourceRecord, DeadLetter]] = []
        self.duplicates = 0
        #: Orders changed in this batch: their current state.
        self.orders: dict[str, OrderState] = {}
        #: InfluxDB points to write before the batch is acknowledged.
        self.lines: list[str] = []
        self.aggregates = aggregates
        self._store = store
        #: What the sinks write (filled by :meth:`update_order`, :meth:`emit`, :meth:`stage_put`
        #: and :meth:`stage_delete`): orders to publish, messages with their source partition,
        #: stage entries by table key (a deletion: ``(key, partition)``).
        self.to_publish: set[str] = set()
        self.emitted: list[tuple[OutRecord, int | None]] = []
        self.stage_changes: dict[str, StageValue | tuple[str, int]] = {}
        #: Source partitions of this batch whose records wrote no state (revoked meanwhile,
        #: or membership not confirmed): their offsets must not be committed.
        self.dropped_partitions: set[int] = set()
        #: For stages whose side effects bypass the outbox (customer notices over HTTP): the
        #: pipeline outbox's fence (raises ``OutboxFenced`` once this worker may have been
        #: replaced) and whether a source partition is owned now. Set by the pipeline.
        self.fence: Callable[[], None] = _unfenced
        self.owned: Callable[[int], bool] = _owns_all

    # -- reading ------------------------------------------------------------------------

    def order(self, order_id: str) -> OrderState | None:
        """Current state of an order (changed in this batch or as stored)."""
        found = self.orders.get(order_id)
        if found is not None:
            return found
        stored = self._store.get(order_id)
        return stored if isinstance(stored, OrderState) else None

    def accepted_by_partition(self) -> dict[int, list[Accepted]]:
        out: dict[int, list[Accepted]] = {}
        for item in self.accepted:
            out.setdefault(item.record.partition, []).append(item)
        return out

    @property
    def partitions(self) -> set[int]:
        return {r.partition for r in self.records}

    # -- adding -------------------------------------------------------------------------

    def update_order(self, order: OrderState, publish: bool = True) -> None:
        """Store a changed order (e.g. with new extension state); ``publish``: send an
        ``order-updates`` message for it in this batch."""
        self.orders[order.order_id] = order
        if publish:
            self.to_publish.add(order.order_id)

    def emit(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        source_partition: int | None = None,
    ) -> None:
        """Send a message with the batch's outputs (``topic`` is the real topic name).
        ``source_partition``: the input partition it derives from; if that partition was
        revoked meanwhile the message is dropped with the batch's other outputs for it."""
        self.emitted.append((OutRecord(topic, value, key, partition, tuple(headers)), source_partition))

    def stage_get(self, stage: str, key: str) -> Any | None:
        table_key = stage_table_key(stage, key)
        change = self.stage_changes.get(table_key)
        if isinstance(change, StageValue):
            return change.data
        if change is not None:
            return None
        stored = self._store.get(table_key)
        return stored.data if isinstance(stored, StageValue) else None

    def stage_put(self, stage: str, key: str, data: Any, partition: int) -> None:
        """Persist JSON-serialisable stage state (in the table, changelogged to ``partition``)."""
        self.stage_changes[stage_table_key(stage, key)] = StageValue(stage, key, partition, data)

    def stage_delete(self, stage: str, key: str, partition: int) -> None:
        self.stage_changes[stage_table_key(stage, key)] = (key, partition)


@runtime_checkable
class Stage(Protocol):
    """A pluggable step of the worker's batch pipeline (optional hooks: the protocols below)."""

    name: str

    async def process(self, ctx: BatchContext) -> None: ...


@runtime_checkable
class RestoringStage(Protocol):
    """After the table was recovered (start, rebalance): this stage's keyed state of the
    partitions this worker now owns."""

    async def restore(self, entries: Mapping[str, Any], partitions: set[int]) -> None: ...


@runtime_checkable
class TickingStage(Protocol):
    """Every tick interval of wall-clock time, with a context that has no records (for
    timers: SLA deadlines, stalled SKUs)."""

    async def tick(self, ctx: BatchContext) -> None: ...


@runtime_checkable
class BackgroundStage(Protocol):
    """Background work started with the worker and cancelled when it stops (e.g.
    following a topic every worker reads in full)."""

    async def run(self) -> None: ...


@runtime_checkable
class InstallingStage(Protocol):
    """Agents, tables and timers of the stage's own on the worker's Faust app, sending
    through ``producer``; ``on_fatal`` stops the worker."""

    def install(self, app: Any, producer: Outbox, on_fatal: Callable[[BaseException], None]) -> None: ...


__all__ = [
    "STAGE_KEY_PREFIX",
    "Accepted",
    "BackgroundStage",
    "BatchContext",
    "InstallingStage",
    "RestoringStage",
    "SourceRecord",
    "Stage",
    "StageValue",
    "TickingStage",
    "stage_table_key",
]
