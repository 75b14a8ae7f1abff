"""Waiting for a condition with a deadline: the only way tests and start-up code wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


def wait_until(
    condition: Callable[[], object], timeout: float, interval: float = 0.05, what: str = "condition"
) -> object:
    """Poll ``condition`` until it returns a truthy value (returned), or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.1f}s")
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], object | Awaitable[object]],
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> object:
    """Async twin of :func:`wait_until`; ``condition`` may be sync or async."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.1f}s")
        await asyncio.sleep(interval)
