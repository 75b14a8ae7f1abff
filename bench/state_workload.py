"""The state benchmark's workload (``bench_state.py``, ``bench_restore.py``): orders of 1-3
lines moving along one route, with sources, hubs, warehouses, carriers, regions, devices,
positions and promised times drawn from realistic sets, as JSON event bytes; and the
worker's fold of one record into a table (``validate_record`` then ``apply_event``)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from stream.contract import Rejection, Status, validate_record
from stream.core.lifecycle import apply_event
from stream.core.order_state import OrderState, new_order

T0 = datetime(2026, 11, 9, tzinfo=UTC)
NOW = datetime(2030, 1, 1, tzinfo=UTC)  # receipt time: every event is in its past
S = Status
#: One line's route; an in-flight line stops somewhere before ``delivered``.
ROUTE = [
    S.PAID,
    S.PICKED,
    S.PACKED,
    S.OUTBOUND_SCAN,
    S.LINEHAUL,
    S.HUB_ARRIVAL,
    S.LINEHAUL,
    S.HUB_ARRIVAL,
    S.OUT_FOR_DELIVERY,
    S.DELIVERED,
]
IN_FLIGHT_STOPS = ROUTE.index(S.OUT_FOR_DELIVERY) + 1
SOURCES = {
    S.PAID: "oms",
    S.PICKED: "wms",
    S.PACKED: "wms",
    S.OUTBOUND_SCAN: "wms",
    S.LINEHAUL: "tms",
    S.HUB_ARRIVAL: "tms",
    S.OUT_FOR_DELIVERY: "courier-app",
    S.DELIVERED: "courier-app",
}
REGIONS = [
    f"{code}0000"
    for code in (
        11,
        12,
        13,
        14,
        15,
        21,
        22,
        23,
        31,
        32,
        33,
        34,
        35,
        36,
        37,
        41,
        42,
        43,
        44,
        45,
        46,
        50,
        51,
        52,
        53,
        54,
        61,
        62,
        63,
        64,
        65,
    )
]
WAREHOUSES = [f"wh-{i:03d}" for i in range(60)]
HUBS = [f"hub-{i:03d}" for i in range(250)]
CARRIERS = ["sf", "zto", "yto", "sto", "jd", "yunda", "ems", "best"]
CHANNELS = ["tmall", "jd", "douyin", "pdd", "app"]
DEVICES = [f"scanner-{i:05d}" for i in range(8000)]


class OrderPlan:
    """One order's fixed attributes; ``event`` renders one line's step as JSON bytes."""

    __slots__ = ("order_id", "region", "channel", "carrier", "warehouse", "dest", "promised", "placed", "lines", "hubs")

    def __init__(self, number: int, placed: datetime, rng: random.Random) -> None:
        self.order_id = f"o-{number:09d}"
        self.region, self.channel = rng.choice(REGIONS), rng.choice(CHANNELS)
        self.carrier, self.warehouse = rng.choice(CARRIERS), rng.choice(WAREHOUSES)
        self.dest = (round(rng.uniform(22, 40), 5), round(rng.uniform(103, 122), 5))
        self.placed = placed
        self.promised = (placed + timedelta(days=3)).isoformat()
        self.lines = [f"sku-{rng.randrange(1, 200_000):06d}" for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))]
        self.lines = list(dict.fromkeys(self.lines))
        self.hubs = rng.sample(HUBS, 2)

    def event(self, line: str, step: int, at: datetime, rng: random.Random) -> tuple[bytes, bytes]:
        status = ROUTE[step]
        node = (
            self.warehouse
            if step < ROUTE.index(S.LINEHAUL) and step > 0
            else self.hubs[0]
            if step < ROUTE.index(S.HUB_ARRIVAL) + 2
            else self.hubs[-1]
            if step > 0
            else None
        )
        value: dict[str, Any] = {
            "event_id": f"{self.order_id}-{line}-{step}",
            "order_id": self.order_id,
            "sku": line,
            "qty": 1 + (step % 2),
            "status": status.value,
            "event_time": at.isoformat(),
            "source": SOURCES[status],
            "channel": self.channel,
            "region": self.region,
            "carrier": self.carrier,
            "promised_by": self.promised,
            "dest_lat": self.dest[0],
            "dest_lon": self.dest[1],
        }
        if node is not None:
            value["node"] = node
        if step > 0:
            value["device_id"] = rng.choice(DEVICES)
        if status in (S.HUB_ARRIVAL, S.OUT_FOR_DELIVERY, S.DELIVERED):
            value["lat"], value["lon"] = round(rng.uniform(22, 40), 5), round(rng.uniform(103, 122), 5)
        if step >= ROUTE.index(S.PICKED) and step <= ROUTE.index(S.OUTBOUND_SCAN):
            value["warehouse"] = self.warehouse
        return self.order_id.encode(), orjson.dumps(value)


def apply_record(store: dict[str, Any], key: bytes, value: bytes) -> OrderState:
    event = validate_record(key, value, NOW)
    if isinstance(event, Rejection):
        raise RuntimeError(f"the bench made an invalid event: {event} {value[:200]!r}")
    order = store.get(event.order_id) or new_order(event.order_id, 0)
    order, change = apply_event(order, event)
    store[event.order_id] = order
    return order
