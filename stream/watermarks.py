"""Event-time watermarks per partition.

A partition's watermark is the newest trusted event time seen on it minus the allowed
lateness: events older than that are late data, and a deadline at or before it has passed
for certain. The worker also sends ``now`` ticks from its clock; a partition that has had
no input for ``idle_after`` (by that clock) follows ``now - allowed_lateness``, so timers
still fire when the stream goes quiet. A partition that is busy (for example catching up
a backlog) is never pushed by the clock, which would fire timers for SKUs whose events are
still queued.

The watermark never goes back. Events flagged as having impossible timestamps do not move
it (a scanner whose clock is a day ahead must not fire every timer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class PartitionClock:
    newest: float | None = None  # newest trusted event time
    watermark: float | None = None
    last_input: float | None = None  # worker clock at the last record (None in a clockless replay)


class Watermarks:
    """Watermarks of the partitions one engine handles; the global one is their minimum."""

    def __init__(self, allowed_lateness: float, idle_after: float) -> None:
        self.allowed_lateness = allowed_lateness
        self.idle_after = idle_after
        self._parts: dict[int, PartitionClock] = {}
        self._global: float | None = None  # cached minimum, recomputed when a mark moves

    def _clock(self, partition: int) -> PartitionClock:
        clock = self._parts.get(partition)
        if clock is None:
            clock = self._parts[partition] = PartitionClock()
        return clock

    def observe(self, partition: int, event_time: float, received: float | None) -> float:
        """Count a trusted event; returns the partition's (possibly advanced) watermark."""
        clock = self._clock(partition)
        if received is not None:
            clock.last_input = received
        if clock.newest is None or event_time > clock.newest:
            clock.newest = event_time
        candidate = clock.newest - self.allowed_lateness
        if clock.watermark is None or candidate > clock.watermark:
            clock.watermark = candidate
            self._global = None
        return clock.watermark

    def note_input(self, partition: int, received: float | None) -> None:
        """A record arrived whose time is not trusted: activity, but no progress of time."""
        if received is not None:
            self._clock(partition).last_input = received

    def newest(self, partition: int) -> float | None:
        clock = self._parts.get(partition)
        return None if clock is None else clock.newest

    def get(self, partition: int) -> float | None:
        clock = self._parts.get(partition)
        return None if clock is None else clock.watermark

    def tick(self, now: float) -> list[int]:
        """Advance idle partitions to ``now - allowed_lateness``; returns those that moved."""
        moved = []
        candidate = now - self.allowed_lateness
        for partition in sorted(self._parts):
            clock = self._parts[partition]
            idle = clock.last_input is None or now - clock.last_input >= self.idle_after
            if idle and (clock.watermark is None or candidate > clock.watermark):
                clock.watermark = candidate
                moved.append(partition)
        self._global = None
        return moved

    def advance_all(self, watermark: float) -> list[int]:
        """Move every known partition to at least ``watermark`` (end of a replay)."""
        moved = []
        for partition in sorted(self._parts):
            clock = self._parts[partition]
            if clock.watermark is None or watermark > clock.watermark:
                clock.watermark = watermark
                moved.append(partition)
        self._global = None
        return moved

    def global_watermark(self) -> float | None:
        """The minimum over partitions that have a watermark (``None`` before any)."""
        if self._global is None:
            marks = [c.watermark for c in self._parts.values() if c.watermark is not None]
            self._global = min(marks) if marks else None
        return self._global

    def partitions(self) -> list[int]:
        return sorted(self._parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            str(p): {"newest": c.newest, "watermark": c.watermark, "last_input": c.last_input}
            for p, c in self._parts.items()
        }

    @classmethod
    def from_dict(cls, allowed_lateness: float, idle_after: float, data: dict[str, Any]) -> Watermarks:
        marks = cls(allowed_lateness, idle_after)
        for p, c in data.items():
            marks._parts[int(p)] = PartitionClock(c["newest"], c["watermark"], c["last_input"])
        return marks
