"""The paced shell: what reaches the sink, control lines, disruption updates, pacing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from orderradar.simulator.durations import CHINA_TZ
from orderradar.simulator.generator import TrafficGenerator, TrafficProfile
from orderradar.simulator.runner import run_simulation
from orderradar.simulator.sinks import JsonLinesSink
from stream.contract import OrderEvent, validate_event

START = datetime(2026, 11, 11, 8, 0, tzinfo=CHINA_TZ)
HOUR = timedelta(hours=1)
PROFILE = TrafficProfile(orders_per_day=5000)


async def _lines(items: list[str]):
    for item in items:
        yield item


def test_unpaced_run_writes_exactly_the_generators_stream(tmp_path):
    out = tmp_path / "events.jsonl"
    report = asyncio.run(
        run_simulation(TrafficGenerator(3, START, PROFILE), JsonLinesSink(out), speed=None, sim_until=START + 3 * HOUR)
    )
    expected = [e.value for e in TrafficGenerator(3, START, PROFILE).take_until(START + 3 * HOUR)]
    written = out.read_bytes().splitlines()
    assert written == expected and report.events == len(expected) > 100
    assert (report.sim_start, report.sim_end) == (START, START + 3 * HOUR)
    assert all(isinstance(validate_event(line, START + 3 * HOUR), OrderEvent) for line in written)


def test_control_lines_start_and_end_scenarios_and_disruptions_follow(tmp_path):
    updates: list[int] = []
    report = asyncio.run(
        run_simulation(
            TrafficGenerator(3, START, PROFILE),
            JsonLinesSink(tmp_path / "events.jsonl"),
            speed=None,
            sim_until=START + 4 * HOUR,
            controls=_lines(["# storm drill", "+typhoon:minutes=60", "bogus", "-hub_outage", "?"]),
            on_disruptions=lambda collection: updates.append(len(collection["features"])),
        )
    )
    assert report.controls_applied == 1  # the bogus line and the no-op removal are only logged
    assert updates == [0, 1, 0]  # none, the typhoon, and gone after its 60 minutes


def test_paced_run_never_gets_ahead_of_the_clock(tmp_path):
    out = tmp_path / "events.jsonl"
    speed = 3600.0
    report = asyncio.run(
        run_simulation(TrafficGenerator(3, START, PROFILE), JsonLinesSink(out), speed=speed, wall_duration_s=0.5)
    )
    span = (report.sim_end - report.sim_start).total_seconds()
    assert 0 < span <= (report.wall_s + 0.01) * speed
    assert span >= 0.3 * report.wall_s * speed
    times = [validate_event(line, report.sim_end) for line in out.read_bytes().splitlines()]
    assert times and all(isinstance(t, OrderEvent) and t.event_time <= report.sim_end for t in times)
