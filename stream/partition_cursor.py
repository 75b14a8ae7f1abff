"""Which delivered records of a source partition a worker may process, and what it may commit.

A worker's state for a partition is the fold of that partition's records in offset order,
starting at the committed offset. Faust does not guarantee that every fetched record reaches
the agent once and in order. Around a rebalance its fetcher runs during table recovery, the
post-recovery seek to the committed offsets races with it, and the agents' queues are cleared
when flow resumes. A record delivered in that window is lost from the queue, and its re-fetch
is dropped by Faust's read-offset filter. Seen here (rebalance-storm test, 1 run in 6 under
load): a worker that took over a partition at committed offset 896 received 897 onwards.
The successor later applied 896 after 897+, so the state differed from a replay.

So the worker keeps a cursor per partition: the next offset it must process.
- A record below the cursor was processed already: skipped (a re-delivery).
- The record at the cursor is processed and moves the cursor on.
- A record above the cursor means records are missing. It is skipped, and the worker reads
  the partition again from the cursor. It first asks the broker where the next record is:
  transaction markers and compaction leave real holes, which move the cursor instead.
The commit is the cursor: every offset below it is processed and written.

Pure: offsets in, decisions out. :mod:`stream.safe_commits` keeps the cursors of a Faust
consumer; :mod:`stream.worker` admits each batch through them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Admission:
    """The records of one partition that a batch may process."""

    #: Positions (in the offsets given) of the records to process, in offset order.
    take: tuple[int, ...]
    #: The cursor once the taken records are processed.
    next_offset: int
    #: Records below the cursor (re-deliveries), skipped.
    behind: int
    #: Records at or above ``next_offset`` that were skipped because records before them
    #: were missing. When any, the partition must be read again from ``next_offset``.
    ahead: int
    #: The lowest of them (``None`` when ``ahead`` is 0).
    first_ahead: int | None


def admit(cursor: int, offsets: Sequence[int]) -> Admission:
    """Which of a partition's delivered ``offsets`` (in delivery order) to process from ``cursor``.

    A record above the cursor is skipped but does not end the scan: a re-read can deliver
    the missing records after stale ones in the same batch (for example 900, 896, 897, ...).
    """
    take: list[int] = []
    behind = 0
    skipped: list[int] = []
    expected = cursor
    for position, offset in enumerate(offsets):
        if offset < expected:
            behind += 1
        elif offset == expected:
            take.append(position)
            expected += 1
        else:
            skipped.append(offset)
    # A skipped record can fall below the final cursor: a later copy of it was taken.
    ahead = [offset for offset in skipped if offset >= expected]
    behind += len(skipped) - len(ahead)
    return Admission(tuple(take), expected, behind, len(ahead), min(ahead) if ahead else None)


@dataclass
class _Cursor:
    offset: int | None = None
    epoch: int = 0


class PartitionCursors(Generic[K]):
    """The cursor of each assigned partition, with an epoch that changes when it is reset.

    A batch notes the epoch at admission; :meth:`advance` ignores a batch admitted before
    the partition was revoked or reassigned (its records are replayed by the new owner, or
    re-delivered to this one from the committed offset).
    """

    def __init__(self) -> None:
        self._cursors: dict[K, _Cursor] = {}

    def forget(self, keys: Iterable[K]) -> None:
        """The partitions were revoked or (re)assigned: positions unknown until :meth:`start`."""
        for key in keys:
            cursor = self._cursors.setdefault(key, _Cursor())
            cursor.offset = None
            cursor.epoch += 1

    def start(self, key: K, offset: int) -> None:
        """The consumer was positioned at ``offset`` (the committed offset, or the log start).

        A cursor already ahead stays: the records between are processed, only not committed
        yet, and their re-deliveries are skipped.
        """
        cursor = self._cursors.setdefault(key, _Cursor())
        if cursor.offset is None or offset > cursor.offset:
            cursor.offset = offset

    def jump(self, key: K, offset: int, epoch: int) -> None:
        """The broker has no records in [cursor, offset) (a hole in the log): move past it,
        unless the partition was reset since ``epoch`` (the answer is about the old cursor)."""
        cursor = self._cursors.get(key)
        if cursor is not None and cursor.epoch == epoch and cursor.offset is not None and offset > cursor.offset:
            cursor.offset = offset

    def position(self, key: K) -> tuple[int | None, int]:
        """The cursor (``None`` while unknown) and its epoch."""
        cursor = self._cursors.get(key)
        return (None, 0) if cursor is None else (cursor.offset, cursor.epoch)

    def advance(self, key: K, offset: int, epoch: int) -> None:
        """The records below ``offset`` admitted at ``epoch`` are processed and written."""
        cursor = self._cursors.get(key)
        if cursor is None or cursor.epoch != epoch or cursor.offset is None:
            return
        if offset > cursor.offset:
            cursor.offset = offset

    def committable(self, key: K) -> int | None:
        return self._cursors[key].offset if key in self._cursors else None
