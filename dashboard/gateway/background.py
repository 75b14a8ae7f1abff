"""The gateway's background tasks: how they are stopped, in one place."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks``, wait until each has ended, then empty the list (a stopped component
    can start again). A task's own ``CancelledError`` is the expected end, not an error."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tasks.clear()
