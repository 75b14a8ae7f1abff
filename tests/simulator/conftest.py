"""Shared pieces for the simulator tests: a fixed start, a complete baseline run and the
legality oracle (``stream.contract.is_legal`` with exceptions resolved as the contract
says: after an ``exception`` the SKU resumes as if from the interrupted status)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime

import pytest

from orderradar.simulator.durations import CHINA_TZ
from orderradar.simulator.emission import Emission
from orderradar.simulator.generator import TrafficGenerator, TrafficProfile
from stream.contract import OrderEvent, Status, is_legal

#: Singles' Day, midnight in China.
START = datetime(2026, 11, 11, 0, 0, tzinfo=CHINA_TZ)


def illegal_transitions(events: Iterable[OrderEvent]) -> list[str]:
    """Every per-SKU step (in event-time order) that the contract does not allow."""
    by_sku: dict[tuple[str, str], list[OrderEvent]] = defaultdict(list)
    for event in events:
        by_sku[(event.order_id, event.sku)].append(event)
    problems = []
    for key, seq in by_sku.items():
        current: Status | None = None
        for event in sorted(seq, key=lambda e: e.event_time):
            if not is_legal(current, event.status):
                problems.append(f"{key}: {current} -> {event.status}")
            if event.status is not Status.EXCEPTION:
                current = event.status
    return problems


@pytest.fixture(scope="session")
def baseline() -> list[Emission]:
    """600 orders of seed 11, every one simulated to the end of its life."""
    profile = TrafficProfile(orders_per_day=20_000, max_orders=600)
    return list(TrafficGenerator(11, START, profile).run_until(None))


@pytest.fixture(scope="session")
def start() -> datetime:
    return START


@pytest.fixture(scope="session")
def check_legal() -> Callable[[Iterable[OrderEvent]], list[str]]:
    return illegal_transitions
