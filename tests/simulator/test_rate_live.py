"""``orderradar simulate --rate R --warmup auto`` puts R events per second on the bus, counted
on the topic of the real broker.

``--rate`` is a mean over the day (the working calendar makes 09:00 busier than 03:00), so
the records are counted over one whole simulated day. Simulated time runs 2880x (a day in
30 wall seconds) and the count is taken by event time, so the figure does not depend on how
fast this machine is: it checks the rate arithmetic, the warm-up (steady state at once) and
that nothing is lost between the generator and the topic. The wall-clock figure is logged.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from live_demo import TopicTail, cli

from orderradar.devstack.isolation import isolated_settings
from orderradar.devstack.waiting import wait_until
from orderradar.simulator.durations import CHINA_TZ
from stream.contract import OrderEvent
from stream.topics import ORDER_EVENTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RATE = 1000.0  # events per wall second
SPEED = 2880.0
DAY = timedelta(days=1)


def test_records_on_the_topic_over_a_simulated_day_match_the_rate(broker, influx, tmp_path):
    settings = isolated_settings(broker.bootstrap, influx.url, tmp_path)
    # two days back: at 2880x the run stays in the past, as a receiver requires
    start = (datetime.now(CHINA_TZ) - 2 * DAY).replace(hour=21, minute=0, second=0, microsecond=0)
    sim = cli(
        "simulator",
        settings,
        tmp_path,
        "simulate",
        "--rate",
        str(RATE),
        "--speed",
        str(SPEED),
        "--warmup",
        "auto",
        "--start",
        start.isoformat(),
        "--sim-duration",
        "25h",
        "--stats-every",
        "5",
    )
    tail = TopicTail(settings, [settings.topic(ORDER_EVENTS)], parse=False)
    try:
        topic = settings.topic(ORDER_EVENTS)
        wait_until(lambda: not sim.alive(), timeout=240, interval=1.0, what="the simulator's 25 simulated hours")
        assert sim.proc is not None and sim.proc.returncode == 0, sim.log_tail(30)
        end = start + DAY

        def day_records() -> list[tuple[int, OrderEvent]]:
            rows = [(ts, OrderEvent.model_validate_json(v)) for ts, v in tail.records(topic)]
            return [(ts, e) for ts, e in rows if start <= e.event_time < end]

        # everything produced is on the topic before the simulator exits; the tail catches up
        wait_until(
            lambda: any(
                e.event_time >= end
                for _, e in ((0, OrderEvent.model_validate_json(v)) for _, v in tail.records(topic)[-50:])
            ),
            timeout=60,
            interval=0.5,
            what="the last simulated hour on the topic",
        )
        records = day_records()
    finally:
        tail.close()
        sim.stop()
    expected = RATE / SPEED * DAY.total_seconds()  # events of one simulated day
    assert 0.9 * expected <= len(records) <= 1.1 * expected, (len(records), expected)
    stamps = sorted(ts for ts, _ in records)
    wall_s = (stamps[-1] - stamps[0]) / 1000
    print(
        f"{len(records)} records for a simulated day ({expected:.0f} expected), "
        f"{len(records) / wall_s:.0f} per wall second over {wall_s:.0f} s"
    )
