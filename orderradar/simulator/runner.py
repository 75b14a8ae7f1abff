"""The simulator's I/O shell: pace the generator against the wall clock, apply control
commands as they arrive, and hand each batch of emissions to a sink.

Every tick the simulated clock is read and everything due up to it is produced and
written; a slow sink makes the next batch bigger rather than dropping anything. With
``speed=None`` there is no pacing: simulated time runs as fast as the CPU allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .control import Activate, ControlError, Deactivate, ShowStatus, parse_control_line
from .generator import TrafficGenerator
from .pacing import SimClock
from .sinks import Sink

logger = logging.getLogger(__name__)

#: Wall seconds between pacing ticks: small enough that events leave close to their
#: simulated time, large enough that batches are worth sending.
TICK_S = 0.05
#: Simulated time produced per step when running unpaced.
UNPACED_STEP = timedelta(minutes=5)


@dataclass(frozen=True)
class RunReport:
    events: int
    orders: int
    sim_start: datetime
    sim_end: datetime
    wall_s: float
    controls_applied: int


async def run_simulation(
    generator: TrafficGenerator,
    sink: Sink,
    *,
    speed: float | None,
    sim_until: datetime | None = None,
    wall_duration_s: float | None = None,
    controls: AsyncIterable[str] | None = None,
    on_disruptions: Callable[[dict[str, Any]], None] | None = None,
    stats_every_s: float = 10.0,
    wall: Callable[[], float] = time.monotonic,
) -> RunReport:
    """Run until ``sim_until`` (simulated), ``wall_duration_s`` (wall) or the generator
    runs dry, whichever comes first; forever if none applies. Closes ``sink``."""
    sim_start = generator.frontier
    clock = SimClock(sim_start, speed or 1.0, wall)
    lines: asyncio.Queue[str] = asyncio.Queue()
    wake = asyncio.Event()
    applied = 0
    emitted = 0
    last_disruptions: dict[str, Any] | None = None
    last_stats = (wall(), 0)

    async def pump(source: AsyncIterable[str]) -> None:
        async for line in source:
            lines.put_nowait(line)
            wake.set()

    reader = asyncio.create_task(pump(controls)) if controls is not None else None
    try:
        while True:
            while not lines.empty():
                applied += _apply(generator, lines.get_nowait())
            target = clock.now() if speed is not None else generator.frontier + UNPACED_STEP
            if sim_until is not None:
                target = min(target, sim_until)
            if target > generator.frontier:
                batch = generator.take_until(target)
                if batch:
                    await sink.write(batch)
                    emitted += len(batch)

            if on_disruptions is not None:
                current = generator.disruptions()
                if current != last_disruptions:
                    on_disruptions(current)
                    last_disruptions = current
            if wall() - last_stats[0] >= stats_every_s:
                _log_stats(generator, clock, speed, emitted, last_stats, wall())
                last_stats = (wall(), emitted)

            if sim_until is not None and generator.frontier >= sim_until:
                break
            if wall_duration_s is not None and clock.wall_elapsed() >= wall_duration_s:
                break
            if generator.exhausted:
                break
            if speed is None:
                await asyncio.sleep(0)  # let the control reader and the producer run
            else:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), TICK_S)
    finally:
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await sink.close()
    return RunReport(emitted, generator.orders_placed, sim_start, generator.frontier, clock.wall_elapsed(), applied)


def _apply(generator: TrafficGenerator, line: str) -> int:
    """Apply one control line at the simulated frontier; 1 if it changed anything."""
    try:
        command = parse_control_line(line)
    except ControlError as exc:
        logger.warning("control rejected: %s", exc)
        return 0
    at = generator.frontier
    if isinstance(command, Activate):
        generator.activate(command.scenario, at)
        logger.info("scenario started spec=%s sim_time=%s", command.scenario.spec(), at.isoformat())
        return 1
    if isinstance(command, Deactivate):
        ended = generator.deactivate(command.name, at, command.params)
        if not ended:
            logger.warning("control: no active scenario matches %r", line.strip())
            return 0
        for scenario in ended:
            logger.info("scenario ended spec=%s sim_time=%s", scenario.spec(), at.isoformat())
        return 1
    if isinstance(command, ShowStatus):
        active = ", ".join(a.scenario.spec() for a in generator.active()) or "none"
        logger.info("active scenarios: %s held_shipments=%d", active, generator.held)
    return 0


def _log_stats(
    generator: TrafficGenerator,
    clock: SimClock,
    speed: float | None,
    emitted: int,
    last: tuple[float, int],
    now_wall: float,
) -> None:
    rate = (emitted - last[1]) / max(now_wall - last[0], 1e-9)
    behind = (clock.now() - generator.frontier).total_seconds() if speed is not None else 0.0
    logger.info(
        "simulator sim_time=%s events=%d events_per_s=%.0f orders=%d held=%d behind_s=%.1f scenarios=%s",
        generator.frontier.isoformat(),
        emitted,
        rate,
        generator.orders_placed,
        generator.held,
        behind,
        ",".join(a.scenario.spec() for a in generator.active()) or "-",
    )
