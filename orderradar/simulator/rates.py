"""Rate arithmetic: orders per day, events per second and time compression.

In steady state every order placed eventually emits all its events, so the event rate
is the order rate times the mean events per order. That mean depends on the model (how
many SKU lines, hubs and GPS fixes an order has), so it is measured by simulating a fixed
sample of orders rather than written down, and stays right when the model changes.

Rates in orders per day are in simulated time; rates in events per second are what the
bus receives per wall-clock second, so they include the ``speed`` factor.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from .durations import CHINA_TZ, DAY_S, HOUR_S
from .generator import TrafficGenerator, TrafficProfile

#: Orders simulated to measure the mean events per order (about 0.5 s of CPU).
CALIBRATION_ORDERS = 2000
_CALIBRATION_START = datetime(2026, 3, 2, tzinfo=CHINA_TZ)


@cache
def events_per_order(gps_interval_s: float = 2 * HOUR_S) -> float:
    """Mean events (SKU-level, all statuses) one order produces over its life."""
    profile = TrafficProfile(orders_per_day=50_000, gps_interval_s=gps_interval_s, max_orders=CALIBRATION_ORDERS)
    gen = TrafficGenerator(0, _CALIBRATION_START, profile)
    gen.skip_until(_CALIBRATION_START + timedelta(days=120))  # every order finished
    return gen.events_simulated / gen.orders_placed


def orders_per_day_for(events_per_second: float, speed: float = 1.0, gps_interval_s: float = 2 * HOUR_S) -> float:
    """Simulated orders per day that put ``events_per_second`` on the bus (wall clock)
    when simulated time runs ``speed`` times faster than the wall clock."""
    if events_per_second <= 0 or speed <= 0:
        raise ValueError("events_per_second and speed must be positive")
    return events_per_second / speed * DAY_S / events_per_order(gps_interval_s)


def events_per_second_for(orders_per_day: float, speed: float = 1.0, gps_interval_s: float = 2 * HOUR_S) -> float:
    """Wall-clock events per second on the bus, in steady state, for a simulated order rate."""
    if orders_per_day <= 0 or speed <= 0:
        raise ValueError("orders_per_day and speed must be positive")
    return orders_per_day / DAY_S * events_per_order(gps_interval_s) * speed
