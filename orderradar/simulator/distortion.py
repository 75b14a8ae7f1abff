"""What the wire does to an event: bad scanner clocks and GPS, late sources, a channel
that re-sends and shuffles. The true flow is untouched; only what is delivered, and when,
changes. Each event's distortion has its own random stream (seed, scenario, event id), so
it does not depend on what else is in flight.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from stream.contract import OrderEvent

from .durations import DAY_S, HOUR_S, MINUTE_S
from .emission import Emission
from .geography import CITIES, jitter
from .randomness import SplitMix64
from .scenarios import BrokenScanner, ChannelDupes, Scenario, SourceLag

#: A broken clock is off by this much (seconds): ahead by hours to three days (beyond
#: the contract's one-day skew some are rejected, the rest are accepted and flagged),
#: or behind by an hour to a month (a clock reset after a battery swap).
FUTURE_SKEW_S = (2 * HOUR_S, 3 * DAY_S)
PAST_SKEW_S = (HOUR_S, 30 * DAY_S)
GPS_JUMP_SIGMA_KM = 30.0


def _rng(seed: int, scenario: Scenario, event: OrderEvent) -> SplitMix64:
    return SplitMix64(f"{seed}:{scenario.name}:{event.event_id}")


def _broken(event: OrderEvent, scenario: BrokenScanner, seed: int) -> OrderEvent:
    rng = _rng(seed, scenario, event)
    skew = rng.uniform(*FUTURE_SKEW_S) if rng.random() < scenario.future_share else -rng.uniform(*PAST_SKEW_S)
    update: dict[str, object] = {"event_time": event.event_time + timedelta(seconds=round(skew, 3))}
    if event.lat is not None and rng.random() < scenario.gps_jump_share:
        city = rng.choice(CITIES)
        update["lat"], update["lon"] = jitter(rng, city.lat, city.lon, GPS_JUMP_SIGMA_KM)
    return event.model_copy(update=update)


def deliveries(event: OrderEvent, at: float, active: Iterable[Scenario], seed: int) -> list[Emission]:
    """The copies of ``event`` (truly happening at ``at``) that reach the bus, and when."""
    copies = [Emission(at, event)]
    scenarios = list(active)
    for s in scenarios:
        if isinstance(s, BrokenScanner) and event.device_id == s.device:
            copies = [Emission(c.at_s, _broken(c.event, s, seed), c.duplicate) for c in copies]
    for s in scenarios:
        if isinstance(s, SourceLag) and event.source == s.source:
            lag = s.lag_minutes * MINUTE_S * _rng(seed, s, event).uniform(0.9, 1.1)
            copies = [Emission(c.at_s + lag, c.event, c.duplicate) for c in copies]
    for s in scenarios:
        if isinstance(s, ChannelDupes) and event.channel == s.channel:
            rng = _rng(seed, s, event)
            shuffled = []
            for c in copies:
                shuffled.append(Emission(c.at_s + rng.uniform(0, s.window_s), c.event, c.duplicate))
                if rng.random() < s.rate:
                    shuffled.append(Emission(c.at_s + rng.uniform(0, s.window_s), c.event, True))
            copies = shuffled
    return copies
