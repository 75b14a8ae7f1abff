"""``sku_events`` point identity through the real worker, broker and InfluxDB (issue 16).

A flash sale stamps many events with the same second and the same tags. 100,000 distinct
valid events sharing one ``event_time`` and one tag set are produced, the worker writes
them, and InfluxDB must hold 100,000 points with 100,000 distinct ``event_id`` s (with a
hash of the event id in the timestamp, 2,000 such events already lost one). Then the same
100,000 records are produced again (new offsets): the worker drops them as duplicates, and
InfluxDB still holds 100,000 points.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from stream_eventgen import Record
from stream_harness import influx_query
from stream_scenario import Run

from config.settings import Settings
from stream.contract import OrderEvent, Status

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 100_000
#: One instant for every event, with digits below the millisecond (kept as a field).
AT = datetime(2026, 11, 11, 0, 0, 0, 123456, tzinfo=UTC)


def flash_sale(count: int) -> list[Record]:
    """``count`` valid events, one per order, identical but for their ids."""
    out = []
    for n in range(count):
        event = OrderEvent(
            event_id=f"flash-{n:06d}",
            order_id=f"o-flash-{n:06d}",
            sku="sku-0001",
            qty=1,
            status=Status.PAID,
            event_time=AT,
            source="oms",
            channel="tmall",
            region="310000",
            warehouse="wh-sh-1",
            carrier="sf",
        )
        out.append(Record(event.order_id.encode(), event.to_json(), "valid", event))
    return out


def counts(settings: Settings) -> tuple[int, int]:
    """(points, distinct event ids) of ``sku_events``."""
    values = influx_query(settings, 'SELECT COUNT("event_id"), COUNT(DISTINCT("event_id")) FROM "sku_events"')
    return (int(values[0][1]), int(values[0][2])) if values else (0, 0)


def test_100k_events_sharing_time_and_tags_each_get_a_point_and_a_replay_adds_none(
    stack_settings: Settings, tmp_path: Path
) -> None:
    started = time.monotonic()
    records = flash_sale(EVENTS)
    run = Run(stack_settings, records, tmp_path)
    run.produce()
    first = dict(run.produced)
    run.start()
    try:
        run.wait_done(timeout=900)
        assert counts(stack_settings) == (EVENTS, EVENTS)
        # every point is at the event's millisecond, in one series per source partition
        series = influx_query(
            stack_settings,
            'SELECT COUNT("event_id") FROM "sku_events" '
            "WHERE time >= '2026-11-11T00:00:00.123Z' "
            "AND time < '2026-11-11T00:00:00.124Z'",
        )
        assert int(series[0][1]) == EVENTS
        exact = influx_query(
            stack_settings, 'SELECT COUNT("event_id") FROM "sku_events" WHERE event_time_us = 1794355200123456'
        )
        assert int(exact[0][1]) == EVENTS

        # Replay: the same records produced again by a real producer (new offsets).
        run.produce()
        run.produced = {p: first.get(p, 0) + run.produced.get(p, 0) for p in set(first) | set(run.produced)}
        run.wait_done(timeout=900)
        assert counts(stack_settings) == (EVENTS, EVENTS)
    finally:
        run.stop()
    print(f"\n{EVENTS:,} events over partitions {first}: {time.monotonic() - started:.0f} s")
