"""Which source offset a worker may commit: the commit frontier of one partition.

The frontier is the first offset that was delivered to the agent and is not acknowledged
yet; when nothing is in flight it is one past the last delivered offset. Committing it
never skips a message that is still being processed, and never waits for an offset that
was never delivered (a Kafka log has holes: transaction markers, compaction).

Why not Faust's own bookkeeping: Faust derives the commit from a sorted list of acked
offsets plus "gaps" in read offsets. When the same offsets are delivered twice (a fetch
that started before the post-recovery seek to the committed offsets, which the embedded
broker's constant generation id does not filter out) the list gains duplicates and its
gap ranges include the delivered offset itself; ``consecutive_numbers`` then splits at
every duplicate and the commit crawls forward one offset per commit interval (seen here:
a restarted worker processed all input in seconds but needed an hour to commit it). See
robinhood/faust#625 and faust-streaming/faust#606 for the same family of defects.

Pure: offsets in, offsets out. :mod:`stream.kafka.safe_commits` feeds it from Faust.
"""

from __future__ import annotations


class CommitFrontier:
    """Delivered and acknowledged offsets of one partition since it was (re)assigned."""

    __slots__ = ("_in_flight", "_highest")

    def __init__(self) -> None:
        #: Delivered and not acknowledged. A seek back can deliver an offset twice; the
        #: first copy acknowledged settles it (processing is idempotent on event_id).
        self._in_flight: set[int] = set()
        self._highest: int | None = None

    def delivered(self, offset: int) -> None:
        self._in_flight.add(offset)
        if self._highest is None or offset > self._highest:
            self._highest = offset

    def acknowledged(self, offset: int) -> None:
        """``offset`` is fully processed (a no-op for one delivered before a reset)."""
        self._in_flight.discard(offset)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def offset(self) -> int | None:
        """The offset to commit (the next one to read after a restart), or ``None``."""
        if self._highest is None:
            return None
        if self._in_flight:
            return min(self._in_flight)
        return self._highest + 1
