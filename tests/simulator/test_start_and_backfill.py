"""Time of day is an input (``--start HH:MM``), and a warm-up with a backfill hands a
receiver parcels in every stage at once, at any hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orderradar.simulator.command import UsageError, auto_warmup, parse_start
from orderradar.simulator.durations import CHINA_TZ
from orderradar.simulator.generator import TrafficGenerator, TrafficProfile
from orderradar.simulator.rates import orders_per_day_for
from stream.contract import Status
from stream.core.progress import LADDER

#: 14:07 UTC = 22:07 in China.
WALL = datetime(2026, 12, 7, 14, 7, 46, 123456, tzinfo=UTC)
#: Every stage a parcel can be in between payment and delivery: the ladder up to it, hubs included.
STAGES = {*LADDER[: LADDER.index(Status.DELIVERED)], Status.HUB_ARRIVAL}


def test_start_takes_a_time_of_day_in_china_at_most_a_day_back():
    assert parse_start("21:00", WALL) == datetime(2026, 12, 7, 21, 0, tzinfo=CHINA_TZ)
    assert parse_start("22:30", WALL) == datetime(2026, 12, 6, 22, 30, tzinfo=CHINA_TZ)
    assert parse_start("3:05", WALL) == datetime(2026, 12, 7, 3, 5, tzinfo=CHINA_TZ)
    assert parse_start(None, WALL) == datetime(2026, 12, 7, 22, 7, 46, tzinfo=CHINA_TZ)
    assert parse_start("2026-11-11T00:00:00+08:00", WALL) == datetime(2026, 11, 11, tzinfo=CHINA_TZ)
    for bad in ("24:00", "21:60", "21h"):
        with pytest.raises(UsageError, match="--start"):
            parse_start(bad, WALL)


def _first_batch(hour: int, share: float) -> tuple[datetime, list]:
    start = datetime(2026, 12, 7, hour, 0, tzinfo=CHINA_TZ)
    profile = TrafficProfile(orders_per_day=4000, diurnal=False, warmup_s=36 * 3600, backfill_share=share)
    gen = TrafficGenerator(5, start, profile)
    gen.skip_until(start)
    return start, gen.take_until(start)


@pytest.mark.parametrize("hour", [3, 9, 15, 21])
def test_backfill_sends_parcels_in_every_stage_at_any_hour(hour, check_legal):
    start, batch = _first_batch(hour, 0.05)
    assert batch and all(e.at == start and e.event.event_time < start for e in batch)
    times = [e.event.event_time for e in batch]
    assert times == sorted(times)  # each SKU's history in order
    last: dict[tuple[str, str], Status] = {}
    for e in batch:
        last[(e.event.order_id, e.event.sku)] = e.event.status
    # Between the last truck (~23:00) and the first pickup (08:00) no parcel waits at a
    # dock, as in a real warehouse: that one stage is empty at night.
    expected = STAGES - {Status.OUTBOUND_SCAN} if hour < 8 else STAGES
    assert expected <= set(last.values()), set(last.values())
    # only orders still in flight: none of them has all its SKUs delivered or cancelled
    done = {Status.DELIVERED, Status.CANCELLED}
    by_order: dict[str, set[Status]] = {}
    for (order, _sku), status in last.items():
        by_order.setdefault(order, set()).add(status)
    assert not [o for o, statuses in by_order.items() if statuses <= done]
    assert check_legal(e.event for e in batch) == []


def test_without_backfill_the_warm_up_emits_nothing_before_start():
    start, batch = _first_batch(21, 0.0)
    assert batch == []
    gen = TrafficGenerator(5, start, TrafficProfile(orders_per_day=4000, diurnal=False, warmup_s=3600))
    assert all(e.event.event_time >= start for e in gen.take_until(start + timedelta(minutes=30)))


def test_auto_warm_up_is_a_day_and_a_half_at_the_demo_rate_and_short_when_too_costly():
    assert auto_warmup(orders_per_day_for(50)) == timedelta(hours=36)
    assert auto_warmup(orders_per_day_for(100)) == timedelta(hours=1)


def test_backfill_survives_a_process_due_exactly_at_start_and_a_run_without_skip():
    from orderradar.simulator.scenarios import FlashSale

    start = datetime(2026, 12, 7, 21, 0, tzinfo=CHINA_TZ)
    profile = TrafficProfile(orders_per_day=4000, diurnal=False, warmup_s=12 * 3600, backfill_share=0.05)
    gen = TrafficGenerator(5, start, profile, [FlashSale(minutes=5)])  # its timer is due at start
    gen.skip_until(start)
    skipped = [e.value for e in gen.take_until(start)]
    assert skipped and all(
        v in skipped
        for v in [e.value for e in TrafficGenerator(5, start, profile).take_until(start) if e.event.event_time < start]
    )
