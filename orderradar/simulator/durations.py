"""How long each stage takes and when work happens: lognormal durations and the local
working calendar (warehouse shifts, carrier pickup waves, courier delivery rounds).

Times inside the simulator are float seconds since the epoch (cheap to compare in a heap);
the calendar is China Standard Time, UTC+8, with no daylight saving.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .randomness import Rng

CHINA_TZ = timezone(timedelta(hours=8))
_UTC_OFFSET_S = 8 * 3600
DAY_S = 86_400.0
HOUR_S = 3600.0
MINUTE_S = 60.0


@dataclass(frozen=True)
class LogNormal:
    """A positive duration: ``median_s * exp(sigma * N(0, 1))``, capped at ``max_factor``x
    the median so one unlucky draw cannot park a parcel for a month."""

    median_s: float
    sigma: float
    max_factor: float = 8.0

    def draw(self, rng: Rng, factor: float = 1.0) -> float:
        x = math.exp(self.sigma * rng.gauss(0.0, 1.0))
        return self.median_s * min(x, self.max_factor) * factor

    @property
    def mean_s(self) -> float:
        return self.median_s * math.exp(self.sigma**2 / 2)  # uncapped mean, for docs/tests


def minutes(m: float, sigma: float) -> LogNormal:
    return LogNormal(m * MINUTE_S, sigma)


#: Stage durations. Medians follow what Chinese marketplaces show customers: picked
#: within a couple of hours, a hub dwell of about two hours, a courier round of a few hours.
PICK_WAIT = minutes(70, 0.8)
PICK_TO_PACK = minutes(20, 0.5)
PACK_TO_DOCK = minutes(15, 0.4)
WAVE_SCAN_SPREAD = minutes(10, 0.6)
SCAN_TO_DEPART = minutes(35, 0.5)
HUB_DWELL = minutes(110, 0.5)
SORT_BEFORE_ROUND = minutes(45, 0.4)
ROUND_DISPATCH_SPREAD = minutes(12, 0.6)
DELIVERY = minutes(150, 0.6)
#: From payment to a customer's cancellation (for the few orders that are cancelled).
CANCEL_AFTER = minutes(40, 1.0)
RESTOCK = minutes(30 * 60, 0.6)
EXCEPTION_AFTER = minutes(15, 0.6)
EXCEPTION_RESOLVE = minutes(180, 0.7)
RETURN_TO_STATION = minutes(90, 0.5)
AIR_HANDLING = minutes(240, 0.4)
TRUCK_VARIATION = LogNormal(1.0, 0.18)

TRUCK_KMH = 62.0
ROAD_FACTOR = 1.25  # road distance / great-circle distance
PLANE_KMH = 750.0

#: Local working calendar (hours of the day, CST).
WAREHOUSE_OPEN_H = 7.0
WAREHOUSE_CLOSE_H = 23.0
#: Express carriers collect from big warehouses every two hours while they work.
PICKUP_WAVES_H = (8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0)
DELIVERY_ROUNDS_H = (8.5, 13.0, 17.0)


def truck_seconds(rng: Rng, km: float, factor: float = 1.0) -> float:
    road_km = km * ROAD_FACTOR + 5.0
    return road_km / TRUCK_KMH * HOUR_S * TRUCK_VARIATION.draw(rng, factor)


def air_seconds(rng: Rng, km: float, factor: float = 1.0) -> float:
    return 1.5 * HOUR_S + km / PLANE_KMH * HOUR_S + AIR_HANDLING.draw(rng, factor)


def local_hour(ts: float) -> float:
    return ((ts + _UTC_OFFSET_S) % DAY_S) / HOUR_S


def _local_midnight(ts: float) -> float:
    return ts - ((ts + _UTC_OFFSET_S) % DAY_S)


def next_time_of_day(ts: float, hours: tuple[float, ...]) -> float:
    """The first of the given local times of day at or after ``ts``."""
    midnight = _local_midnight(ts)
    h = (ts - midnight) / HOUR_S
    i = bisect.bisect_left(hours, h)
    if i < len(hours):
        return midnight + hours[i] * HOUR_S
    return midnight + DAY_S + hours[0] * HOUR_S


def within_hours(ts: float, open_h: float, close_h: float) -> float:
    """``ts`` if the site is open then, else its next opening time."""
    h = local_hour(ts)
    if open_h <= h < close_h:
        return ts
    return next_time_of_day(ts, (open_h,))


def end_of_local_day(ts: float) -> float:
    return _local_midnight(ts) + DAY_S - 1.0


def to_datetime(ts: float) -> datetime:
    """Event times are whole milliseconds in CST, so the wire form is short and stable."""
    return datetime.fromtimestamp(round(ts, 3), CHINA_TZ)


def to_seconds(dt: datetime) -> float:
    if dt.tzinfo is None:
        raise ValueError(f"{dt.isoformat()} has no UTC offset")
    return dt.timestamp()
