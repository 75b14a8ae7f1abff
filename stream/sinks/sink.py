"""What the worker's sinks share: the :class:`Sink` protocol and a batch's :class:`Fence`.

A batch's outputs go to three sinks, each with the encoder of its own wire format (as Quix
Streams' sinks do): InfluxDB points (:class:`stream.sinks.influx.InfluxSink`), messages to
topics (:class:`stream.sinks.topic.TopicSink`) and the table changelog
(:class:`stream.sinks.changelog.ChangelogSink`). Which outputs may still be written is
decided once per batch, in the :class:`Fence` the pipeline hands to every sink: a worker
that could not confirm its membership writes nothing, and the outputs of a source
partition revoked meanwhile are left to its new owner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")
ItemT = TypeVar("ItemT", contravariant=True)
ResultT = TypeVar("ResultT", covariant=True)


def unfenced() -> None:
    """A producer fence that never refuses (a pipeline without a membership lease)."""


@dataclass
class Fence:
    """Which source partitions one batch may still write."""

    #: Whether this worker owns a source partition now (asked once per partition and phase:
    #: asking builds the consumer's assignment set).
    owned: Callable[[int], bool]
    #: The producer's fence: raises :class:`~stream.sinks.outbox.OutboxFenced` once this
    #: worker may have been replaced; sinks check it right before they write.
    check: Callable[[], None] = unfenced
    #: Membership not confirmed: every output is dropped (a successor may have written).
    fenced: bool = False
    #: Source partitions revoked during the batch.
    revoked: frozenset[int] = frozenset()
    _owned: dict[int, bool] = field(default_factory=dict)

    def dropped(self, partition: int | None) -> bool:
        """Whether an output of source ``partition`` is dropped (``None``: of no partition)."""
        if self.fenced:
            return True
        if partition is None:
            return False
        if partition in self.revoked:
            return True
        known = self._owned.get(partition)
        if known is None:
            known = self._owned[partition] = self.owned(partition)
        return not known

    def keep(self, items: Iterable[tuple[T, int | None]]) -> list[T]:
        """The items (each with its source partition) that may be written."""
        return [item for item, partition in items if not self.dropped(partition)]

    def recheck(self, confirmed: bool) -> None:
        """After writes that awaited: ownership is asked again (a rebalance may have come),
        and an unconfirmed membership fences the rest of the batch."""
        self.fenced = self.fenced or not confirmed
        self._owned.clear()


class Sink(Protocol[ItemT, ResultT]):
    """Writes a batch's items of one kind, each encoded by the sink, within the fence."""

    async def write(self, items: Sequence[ItemT], fence: Fence) -> ResultT: ...


__all__ = ["Fence", "Sink", "unfenced"]
