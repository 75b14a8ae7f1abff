"""The shape of the generated traffic: how many orders, over which daily curve, with how
much warm-up and backfill. Pure configuration, validated on construction."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .durations import HOUR_S

#: Share of a day's orders placed in each local hour (CST), from the shape of Chinese
#: marketplace traffic: a night trough, a late-morning peak and the evening peak.
_HOURLY = (
    0.55,
    0.3,
    0.18,
    0.12,
    0.1,
    0.12,
    0.25,
    0.5,
    0.8,
    1.1,
    1.3,
    1.25,
    1.15,
    1.1,
    1.15,
    1.2,
    1.15,
    1.1,
    1.05,
    1.2,
    1.45,
    1.6,
    1.5,
    1.0,
)
DIURNAL: tuple[float, ...] = tuple(w * 24 / sum(_HOURLY) for w in _HOURLY)


@dataclass(frozen=True)
class TrafficProfile:
    """How much traffic and of what shape."""

    #: Mean orders per simulated day.
    orders_per_day: float = 50_000.0
    #: Follow the daily curve (``DIURNAL``); off gives a flat Poisson rate.
    diurnal: bool = True
    #: Seconds of simulated time between GPS fixes of a truck on a lane.
    gps_interval_s: float = 2 * HOUR_S
    #: Simulated time placed before ``start`` whose orders are simulated but not emitted,
    #: so the flow starts in steady state (parcels already in flight) rather than empty.
    warmup_s: float = 0.0
    #: Stop placing orders after this many (the flow then drains); ``None``: never stop.
    max_orders: int | None = None
    #: Share of the orders still in flight at ``start`` whose warm-up scans are sent at
    #: ``start`` anyway (with their own, past, event times): a receiver that starts with the
    #: simulator then holds parcels in every stage at once, whatever the time of day.
    backfill_share: float = 0.0

    def __post_init__(self) -> None:
        if not (self.orders_per_day > 0 and math.isfinite(self.orders_per_day)):
            raise ValueError(f"orders_per_day must be a positive number, got {self.orders_per_day}")
        if self.gps_interval_s < 60:
            raise ValueError(f"gps_interval_s must be at least 60, got {self.gps_interval_s}")
        if self.warmup_s < 0:
            raise ValueError(f"warmup_s must not be negative, got {self.warmup_s}")
        if not 0.0 <= self.backfill_share <= 1.0:
            raise ValueError(f"backfill_share must be between 0 and 1, got {self.backfill_share}")
