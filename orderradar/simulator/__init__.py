"""Realistic, seeded order traffic for Order Radar.

The pure core (no clock, no I/O) is exported here::

    from orderradar.simulator import TrafficGenerator, TrafficProfile, parse_scenario
    gen = TrafficGenerator(seed=7, start=start, profile=TrafficProfile(orders_per_day=20_000),
                           scenarios=[parse_scenario("hub_outage:hub=HZ-3,minutes=90")])
    for emission in gen.run_until(start + timedelta(hours=6)):
        emission.key, emission.value       # Kafka record: order_id, event JSON

    from orderradar.simulator import generate_dataset
    ds = generate_dataset(seed=1, n_events=10_000, invalid_rate=0.01, dup_rate=0.05, reorder_rate=0.05)

The I/O shells live in their own modules: ``runner.run_simulation`` (pacing, controls),
``sinks`` (Kafka, JSON Lines) and ``command`` (``orderradar simulate``).
"""

from .dataset import EXPECTED_REJECTION, Dataset, InvalidKind, generate_dataset
from .emission import Emission
from .generator import TrafficGenerator, TrafficProfile, iter_events
from .rates import events_per_order, events_per_second_for, orders_per_day_for
from .scenarios import (
    SCENARIOS,
    BrokenScanner,
    CarrierSlowdown,
    ChannelDupes,
    FlashSale,
    HubOutage,
    Scenario,
    ScenarioError,
    SourceLag,
    Typhoon,
    parse_scenario,
)

__all__ = [
    "EXPECTED_REJECTION",
    "SCENARIOS",
    "BrokenScanner",
    "CarrierSlowdown",
    "ChannelDupes",
    "Dataset",
    "Emission",
    "FlashSale",
    "HubOutage",
    "InvalidKind",
    "Scenario",
    "ScenarioError",
    "SourceLag",
    "TrafficGenerator",
    "TrafficProfile",
    "Typhoon",
    "events_per_order",
    "events_per_second_for",
    "generate_dataset",
    "iter_events",
    "orders_per_day_for",
    "parse_scenario",
]
