"""When to start a crashed child of ``orderradar up`` again: backoff, and when to give up.

The worker is crash-only (a failed batch exits it; its successor replays the batch), so
the local stack supervises its children like systemd or Kubernetes would: restart after
an exponentially growing delay, give up when a child keeps crashing. Pure: times in,
decisions out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from alerting.backoff import RetryPolicy


@dataclass(frozen=True)
class RestartPolicy:
    #: Crashes tolerated within ``window_s``; one more and the stack stops.
    max_restarts: int = 5
    window_s: float = 300.0
    #: The delay before the n-th restart within the window: ``backoff.delay_cap(n)``.
    backoff: RetryPolicy = RetryPolicy(base_delay=1.0, max_delay=30.0)


class RestartTracker:
    """The crash history of one child."""

    def __init__(self, policy: RestartPolicy = RestartPolicy()) -> None:
        self.policy = policy
        self._crashes: deque[float] = deque()

    def on_exit(self, now: float) -> float | None:
        """The delay before starting the child again, or ``None``: it keeps crashing."""
        policy = self.policy
        while self._crashes and now - self._crashes[0] > policy.window_s:
            self._crashes.popleft()
        self._crashes.append(now)
        if len(self._crashes) > policy.max_restarts:
            return None
        return policy.backoff.delay_cap(len(self._crashes))
