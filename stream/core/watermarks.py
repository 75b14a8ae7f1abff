"""Event-time watermarks per source and partition.

A source's watermark in a partition is the newest trusted event time it sent there minus
the allowed lateness. The partition's watermark is the minimum over its sources (a source
that lags, such as a carrier syncing its scans every 12 minutes, holds the partition back
instead of seeing its SKUs judged late before its scans arrive), and never goes back: a
deadline at or before it has passed for certain.

``now`` ticks come from the timeline's clock (the wall clock for live traffic; the newest
event time of a replay for a replay, see ``stream.core.delays_engine``). A source that has had
no input for ``idle_after`` (by that clock) follows ``now - allowed_lateness``, so timers
still fire when it goes quiet. A source that is busy (for example catching up a backlog)
is never pushed by the clock, which would fire timers for SKUs whose events are queued.

Partitions can be *expected* (those a worker owns): until each has a watermark the
global one is unknown, so the first records of a partition are not late data merely
because another partition started earlier. An expected partition without any source
follows the ticks like an idle source.

Events flagged as having impossible timestamps do not move a watermark (a scanner whose
clock is a day ahead must not fire every timer). Pure: time is passed in.

The partition's *event clock* (:meth:`Watermarks.event_clock`), what its event time is now
by the records around it, is what such a timestamp is judged against. Each of its last
:data:`RECENT_RECORDS` records, trusted or not, says "event time is mine plus the receipt
time since I came"; the clock is the latest such time that two senders (devices, else
sources) vouch for: the second highest of the senders' latest. One broken device cannot move
it however many of its records are among the last, while a feed whose event time trails the
wall clock (a simulator, a source catching up) moves it with its own records, so a
catch-up's scans, each a little later than those of other devices before it, are never far
ahead of it. With one sender among the last records, its latest is the clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

#: Records (event time, receipt time, sender) kept per partition for its event clock.
RECENT_RECORDS = 9


@dataclass(slots=True)
class SourceClock:
    newest: float | None = None  # newest trusted event time
    watermark: float | None = None
    last_input: float | None = None  # clock time of the last record (None: never by a clock)


class Watermarks:
    """Watermarks of the partitions one engine handles; the global one is their minimum."""

    def __init__(self, allowed_lateness: float, idle_after: float) -> None:
        self.allowed_lateness = allowed_lateness
        self.idle_after = idle_after
        self._sources: dict[int, dict[str, SourceClock]] = {}
        self._marks: dict[int, float] = {}  # partition watermark (min over sources, monotonic)
        self._global: float | None = None  # cached minimum, recomputed when a mark moves
        self._expected: set[int] = set()
        self._now: dict[int, float] = {}  # latest clock time a partition was ticked with
        #: the partition's last records with a receipt time: (event time, receipt time, sender)
        self._recent: dict[int, deque[tuple[float, float, str]]] = {}

    def expect(self, partitions: set[int] | list[int] | range) -> None:
        """Partitions whose watermark the global one waits for (see the module doc)."""
        self._expected = set(partitions)
        for partition in self._expected:
            self._sources.setdefault(partition, {})
        self._global = None

    @property
    def expected(self) -> frozenset[int]:
        return frozenset(self._expected)

    def silent(self) -> set[int]:
        """Expected partitions that have no source yet (nothing received from them)."""
        return {p for p in self._expected if not self._sources.get(p)}

    def _clock(self, partition: int, source: str) -> SourceClock:
        sources = self._sources.setdefault(partition, {})
        clock = sources.get(source)
        if clock is None:
            clock = sources[source] = SourceClock()
        return clock

    def _settle(self, partition: int) -> float | None:
        """Recompute the partition's watermark from its sources (it never goes back)."""
        marks = [c.watermark for c in self._sources.get(partition, {}).values() if c.watermark is not None]
        old = self._marks.get(partition)
        if marks:
            low = min(marks)
            if old is None or low > old:
                self._marks[partition] = low
                self._global = None
                return low
        return old

    def observe(self, partition: int, event_time: float, received: float | None, source: str = "") -> float:
        """Count a trusted event; returns the partition's (possibly advanced) watermark."""
        clock = self._clock(partition, source)
        if received is not None:
            clock.last_input = received
        if clock.newest is None or event_time > clock.newest:
            clock.newest = event_time
        candidate = clock.newest - self.allowed_lateness
        if clock.watermark is None or candidate > clock.watermark:
            clock.watermark = candidate
        mark = self._settle(partition)
        return mark if mark is not None else candidate

    def note_input(self, partition: int, received: float | None, source: str = "") -> None:
        """A record arrived whose time is not trusted: activity, but no progress of time."""
        if received is not None:
            self._clock(partition, source).last_input = received

    def note_record(self, partition: int, event_time: float, received: float, sender: str) -> None:
        """A record of the partition, trusted or not, from ``sender`` (its device, else its
        source), for its :meth:`event_clock`."""
        recent = self._recent.get(partition)
        if recent is None:
            recent = self._recent[partition] = deque(maxlen=RECENT_RECORDS)
        recent.append((event_time, received, sender))

    def event_clock(self, partition: int, received: float) -> float | None:
        """The partition's event time at receipt time ``received`` (see the module doc);
        ``None`` before it had a record with a receipt time."""
        recent = self._recent.get(partition)
        if not recent:
            return None
        latest: dict[str, float] = {}
        for event_time, at, sender in recent:
            now = event_time + max(received - at, 0.0)  # receipt times may step back a little
            if sender not in latest or now > latest[sender]:
                latest[sender] = now
        ranked = sorted(latest.values())
        return ranked[-2] if len(ranked) > 1 else ranked[-1]

    def newest(self, partition: int, source: str | None = None) -> float | None:
        """Newest trusted event time of one source (or of any source) in the partition."""
        sources = self._sources.get(partition, {})
        times = [c.newest for name, c in sources.items() if c.newest is not None and source in (None, name)]
        return max(times) if times else None

    def get(self, partition: int) -> float | None:
        return self._marks.get(partition)

    def tick(self, now: float, skip: set[int] | frozenset[int] = frozenset()) -> list[int]:
        """Advance idle sources to ``now - allowed_lateness`` (except in the partitions
        ``skip``); returns the partitions that moved."""
        return [p for p in sorted(self._sources) if p not in skip and self.tick_partition(p, now)]

    def tick_partition(self, partition: int, now: float) -> bool:
        """Advance the partition's idle sources; whether its watermark moved.

        Without a clock (a replay: ``now`` is the partition's newest event time) this keeps
        each partition's watermark a function of its own records only."""
        now = max(now, self._now.get(partition, now))  # record times may step back
        self._now[partition] = now
        candidate = now - self.allowed_lateness
        sources = self._sources.get(partition, {})
        for clock in sources.values():
            idle = clock.last_input is None or now - clock.last_input >= self.idle_after
            if idle and (clock.watermark is None or candidate > clock.watermark):
                clock.watermark = candidate
        before = self._marks.get(partition)
        if not sources:  # expected, never heard from: as idle as a source can be
            self._raise(partition, candidate)
        return self._settle(partition) != before

    def _raise(self, partition: int, mark: float) -> None:
        old = self._marks.get(partition)
        if old is None or mark > old:
            self._marks[partition] = mark
            self._global = None

    def advance_all(self, watermark: float) -> list[int]:
        """Move every known partition to at least ``watermark`` (end of a replay)."""
        moved = []
        for partition in sorted(self._sources):
            for clock in self._sources[partition].values():
                if clock.watermark is None or watermark > clock.watermark:
                    clock.watermark = watermark
            before = self._marks.get(partition)
            self._raise(partition, watermark)
            if self._settle(partition) != before:
                moved.append(partition)
        return moved

    def global_watermark(self) -> float | None:
        """The minimum over partitions that have a watermark (``None`` before any)."""
        if self._global is None and self._marks:
            if any(p not in self._marks for p in self._expected):
                return None
            self._global = min(self._marks.values())
        return self._global

    def partitions(self) -> list[int]:
        return sorted(self._sources)

    def sources(self, partition: int) -> dict[str, float | None]:
        """Each source's watermark in the partition."""
        return {name: c.watermark for name, c in sorted(self._sources.get(partition, {}).items())}

    def to_dict(self) -> dict[str, Any]:
        return {
            str(p): {
                "watermark": self._marks.get(p),
                "now": self._now.get(p),
                "recent": [list(r) for r in self._recent.get(p, ())],
                "sources": {
                    s: {"newest": c.newest, "watermark": c.watermark, "last_input": c.last_input}
                    for s, c in sources.items()
                },
            }
            for p, sources in self._sources.items()
        }

    @classmethod
    def from_dict(cls, allowed_lateness: float, idle_after: float, data: dict[str, Any]) -> Watermarks:
        marks = cls(allowed_lateness, idle_after)
        for p, c in data.items():
            sources = c.get("sources")
            if sources is None:  # a snapshot from before per-source clocks: one unnamed source
                sources = {"": {"newest": c["newest"], "watermark": c["watermark"], "last_input": c["last_input"]}}
            marks._sources[int(p)] = {
                s: SourceClock(v["newest"], v["watermark"], v["last_input"]) for s, v in sources.items()
            }
            if c.get("now") is not None:
                marks._now[int(p)] = c["now"]
            if c.get("recent"):  # absent in snapshots from before the event clock
                marks._recent[int(p)] = deque(((t, at, who) for t, at, who in c["recent"]), maxlen=RECENT_RECORDS)
            if c.get("watermark") is not None:
                marks._marks[int(p)] = c["watermark"]
            else:
                marks._settle(int(p))
        return marks
