"""Restart decisions of ``orderradar up``'s supervisor."""

from __future__ import annotations

from alerting.backoff import RetryPolicy
from orderradar.devstack.restarts import RestartPolicy, RestartTracker


def test_backoff_doubles_up_to_the_cap() -> None:
    tracker = RestartTracker(
        RestartPolicy(max_restarts=10, window_s=1000, backoff=RetryPolicy(base_delay=1, max_delay=8))
    )
    assert [tracker.on_exit(float(t)) for t in range(6)] == [1, 2, 4, 8, 8, 8]


def test_gives_up_when_a_child_keeps_crashing() -> None:
    tracker = RestartTracker(RestartPolicy(max_restarts=3, window_s=60))
    assert all(tracker.on_exit(t) is not None for t in (0.0, 10.0, 20.0))
    assert tracker.on_exit(30.0) is None


def test_old_crashes_leave_the_window() -> None:
    tracker = RestartTracker(RestartPolicy(max_restarts=2, window_s=60, backoff=RetryPolicy(base_delay=1)))
    assert tracker.on_exit(0.0) == 1
    assert tracker.on_exit(10.0) == 2
    assert tracker.on_exit(100.0) == 1  # the first two are forgotten
