"""InfluxDB down mid-stream: nothing is lost once it is back.

The worker keeps consuming while InfluxDB is down: batches whose points cannot be written
go to ``influx-dlq`` (awaited before the offsets are acknowledged), and the replayer
rewrites them when InfluxDB answers again. Uses its own influxd (the session one is shared).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from stream_eventgen import generate
from stream_harness import committed, produce, read_topic
from stream_scenario import Run, assert_all

from orderradar.devstack.broker import EmbeddedBroker
from orderradar.devstack.influx import LocalInflux
from orderradar.devstack.isolation import isolated_settings
from orderradar.devstack.process import free_port
from orderradar.devstack.waiting import wait_until
from stream.core.dlq import InfluxFailure, influx_reason
from stream.kafka.batch_source import source_group
from stream.topics import INFLUX_DLQ, ORDER_EVENTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 60.0  # "InfluxDB stopped for a minute" (issue #11)


def test_influx_stopped_a_minute_mid_stream_loses_nothing(broker: EmbeddedBroker, tmp_path: Path) -> None:
    influx = LocalInflux(free_port(), tmp_path / "influx").start()
    try:
        settings = isolated_settings(broker.bootstrap, influx.url, tmp_path)
        records = generate(seed=5, total=12_000)
        first, second = records[:4_000], records[4_000:]
        run = Run(settings, records, tmp_path, extra_args=("--influx-replay-max-backoff", "2"))
        produced = asyncio.run(produce(settings, settings.topic(ORDER_EVENTS), [(r.key, r.value) for r in first]))
        run.start()
        try:
            run.wait_points(0.2, timeout=120)
            influx.stop()
            stopped_at = time.monotonic()
            more = asyncio.run(produce(settings, settings.topic(ORDER_EVENTS), [(r.key, r.value) for r in second]))
            run.produced = {p: produced.get(p, 0) + more.get(p, 0) for p in set(produced) | set(more)}
            group, topic = source_group(settings), settings.topic(ORDER_EVENTS)

            def input_consumed_during_outage() -> bool:
                run.check_alive()
                offsets = asyncio.run(committed(settings, group, topic))
                return (
                    all(offsets.get(p, 0) >= n for p, n in run.produced.items())
                    and time.monotonic() - stopped_at >= OUTAGE_S
                )

            # The worker keeps going without InfluxDB: all input committed while it is down.
            wait_until(
                input_consumed_during_outage,
                timeout=OUTAGE_S + 120,
                interval=0.5,
                what="all input committed during the outage",
            )
            dead = asyncio.run(read_topic(settings, settings.topic(INFLUX_DLQ)))
            assert dead, "nothing went to influx-dlq while InfluxDB was down"
            reasons = {influx_reason(list(r.headers)) for r in dead}
            assert reasons <= {InfluxFailure.RETRIES_EXHAUSTED, InfluxFailure.CIRCUIT_OPEN}, reasons
            influx.start()
            run.wait_points(1.0, timeout=180)
        finally:
            run.stop()
        assert_all(run)
    finally:
        influx.stop()
