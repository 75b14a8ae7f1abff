"""Time compression: the mapping from wall-clock time to simulated time.

``sim = sim_start + speed * (wall - wall_start)``. The wall clock is injected (a
monotonic function) so the mapping itself is pure arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta


class SimClock:
    """Simulated time running ``speed`` times faster than ``wall`` (seconds, monotonic)."""

    def __init__(self, sim_start: datetime, speed: float, wall: Callable[[], float]) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.sim_start = sim_start
        self.speed = speed
        self._wall = wall
        self._wall_start = wall()

    def now(self) -> datetime:
        return self.sim_start + timedelta(seconds=(self._wall() - self._wall_start) * self.speed)

    def wall_elapsed(self) -> float:
        return self._wall() - self._wall_start

    def wall_seconds_until(self, sim_time: datetime) -> float:
        """Wall seconds from now until the simulated clock shows ``sim_time`` (<= 0: past)."""
        return (sim_time - self.now()).total_seconds() / self.speed


def seconds_until_future_rejection(speed: float, max_skew: timedelta, behind: timedelta = timedelta(0)) -> float | None:
    """Wall seconds after which events that start ``behind`` the wall clock run more than
    ``max_skew`` ahead of a receiver's real clock (``None`` if they never do)."""
    if speed <= 1.0:
        return None
    return max(0.0, (max_skew + behind).total_seconds() / (speed - 1.0))
