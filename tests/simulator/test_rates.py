"""Rate arithmetic and the order arrival process it rests on."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from orderradar.simulator.durations import CHINA_TZ, DAY_S
from orderradar.simulator.generator import DIURNAL, TrafficGenerator, TrafficProfile
from orderradar.simulator.pacing import SimClock, seconds_until_future_rejection
from orderradar.simulator.rates import events_per_order, events_per_second_for, orders_per_day_for

START = datetime(2026, 11, 11, 0, 0, tzinfo=CHINA_TZ)
HOUR = timedelta(hours=1)


def test_events_per_second_and_orders_per_day_are_inverse_and_scale_with_speed():
    per_order = events_per_order()
    assert 10 < per_order < 40
    assert orders_per_day_for(100, speed=1) == pytest.approx(100 * DAY_S / per_order)
    assert orders_per_day_for(100, speed=60) == pytest.approx(orders_per_day_for(100) / 60)
    assert events_per_second_for(orders_per_day_for(500, 60), 60) == pytest.approx(500)
    # Fewer GPS fixes, fewer events per order, more orders for the same event rate.
    assert events_per_order(4 * 3600) < per_order
    with pytest.raises(ValueError, match="positive"):
        orders_per_day_for(0)


def test_calibrated_events_per_order_matches_another_seeds_full_lives():
    gen = TrafficGenerator(99, START, TrafficProfile(orders_per_day=20_000, max_orders=600))
    gen.skip_until(START + timedelta(days=60))
    assert gen.exhausted and gen.orders_placed == 600
    assert gen.events_simulated / 600 == pytest.approx(events_per_order(), rel=0.08)


def test_flat_arrivals_place_the_orders_per_day_asked_for():
    gen = TrafficGenerator(5, START, TrafficProfile(orders_per_day=2000, diurnal=False))
    gen.skip_until(START + timedelta(days=1))
    assert gen.orders_placed == pytest.approx(2000, rel=0.07)


def test_diurnal_arrivals_keep_the_daily_mean_and_follow_the_curve():
    assert sum(DIURNAL) / 24 == pytest.approx(1.0)
    gen = TrafficGenerator(5, START, TrafficProfile(orders_per_day=2000))
    per_hour = []
    for h in range(1, 25):
        before = gen.orders_placed
        gen.skip_until(START + h * HOUR)
        per_hour.append(gen.orders_placed - before)
    assert sum(per_hour) == pytest.approx(2000, rel=0.07)
    assert per_hour[21] > 5 * per_hour[4]  # 21:00 peak against the 04:00 trough (CST)


def test_steady_state_event_rate_matches_the_arithmetic():
    profile = TrafficProfile(orders_per_day=1000, diurnal=False, warmup_s=4 * DAY_S)
    gen = TrafficGenerator(8, START, profile)
    gen.skip_until(START)
    emitted = len(gen.take_until(START + 12 * HOUR))
    expected = events_per_second_for(1000) * 12 * 3600
    assert emitted == pytest.approx(expected, rel=0.15)


def test_sim_clock_runs_speed_times_faster_than_the_injected_wall():
    wall = [100.0]
    clock = SimClock(START, 60.0, lambda: wall[0])
    assert clock.now() == START
    wall[0] += 2.5
    assert clock.now() == START + timedelta(seconds=150)
    assert clock.wall_seconds_until(START + timedelta(seconds=210)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="speed"):
        SimClock(START, 0, lambda: 0.0)
    assert seconds_until_future_rejection(1.0, timedelta(days=1)) is None
    assert seconds_until_future_rejection(61.0, timedelta(days=1)) == pytest.approx(1440)
