"""The simulator's output unit: one event put on the wire at a (simulated) time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stream.contract import OrderEvent

from .durations import to_datetime


@dataclass(frozen=True, slots=True)
class Emission:
    """``event`` reaches the bus at ``at_s`` (seconds since the epoch, simulated time).

    Normally ``at_s`` is the event's own time; scenarios that delay or re-send events
    (``source_lag``, ``channel_dupes``) make it later, and ``broken_scanner`` makes the
    event's time wrong while ``at_s`` stays true. ``duplicate`` marks a re-sent copy.
    """

    at_s: float
    event: OrderEvent
    duplicate: bool = False

    @property
    def at(self) -> datetime:
        return to_datetime(self.at_s)

    @property
    def key(self) -> bytes:
        """The Kafka record key: events of one order share a partition."""
        return self.event.order_id.encode()

    @property
    def value(self) -> bytes:
        return self.event.to_json()
