"""Order events that make the worker open one hub incident per shipped alert rule.

Sizes leave room for the detector's updates, which are published when the count moved
by a tenth (so a hub of 1150 stalled orders may be reported at 1050): every rule holds
from the first update that reaches the engine on.

Every scenario stalls its own hub (its parcels arrive and are never scanned again), with
orders whose value, VIP flag, penalty attribute and promise are chosen so that exactly
the rule it stands for decides its tier. The hubs' parcels are disjoint and all other
traffic flows through healthy hubs, so each stalled hub is its own root cause.

``HUB-Z`` sits in Zhejiang (region code 330000) under a declared disruption zone: its
incident is the target of the region-disruption inhibition rule; every other hub is in
Jiangsu (320000).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from stream.contract import OrderEvent, Status

WAREHOUSE = ("WH-SZ", (31.30, 120.58))  # Suzhou, Jiangsu
JIANGSU, ZHEJIANG = "320000", "330000"
HEALTHY_HUBS = {f"HUB-OK{i}": (31.45 + 0.05 * (i % 4), 120.30 + 0.12 * (i // 4)) for i in range(8)}
ZONE_HUB = ("HUB-Z", (30.75, 120.76))  # Jiaxing, Zhejiang
#: The declared zone around HUB-Z (GeoJSON, lon/lat).
ZONE_BOX = {
    "type": "Polygon",
    "coordinates": [[[120.70, 30.70], [120.82, 30.70], [120.82, 30.80], [120.70, 30.80], [120.70, 30.70]]],
}
FAR = timedelta(days=2)


@dataclass(frozen=True)
class Scenario:
    """One stalled hub: ``orders`` parcels, the first ``vip`` of them VIP, the first
    ``penalty`` carrying ``attributes.penalty``, each worth ``value``, promised at
    ``promise`` after the test's start, arriving at the hub within ``arrive`` (minutes
    before the start, oldest first)."""

    hub: str
    orders: int
    value: float = 100.0
    vip: int = 0
    penalty: int = 0
    promise: timedelta = FAR
    arrive: tuple[int, int] = (100, 55)
    region: str = JIANGSU
    position: tuple[float, float] | None = None

    def where(self) -> tuple[float, float]:
        if self.position is not None:
            return self.position
        n = int(self.hub.rsplit("-", 1)[1])
        return (31.50 + 0.04 * (n % 5), 120.40 + 0.08 * (n // 5))


def _key(condition: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in condition.items()))


#: (tier, condition as written in config/alerting.yaml) -> the scenario that needs it alone.
TIER_SCENARIOS: dict[tuple[str, tuple[tuple[str, str], ...]], Scenario] = {
    ("P1", _key({"min_affected_orders": 1000})): Scenario("HUB-1", 1150),
    ("P1", _key({"min_order_value": 500000})): Scenario("HUB-2", 12, value=70_000.0),
    ("P1", _key({"min_vip_orders": 50})): Scenario("HUB-3", 60, vip=60),
    ("P1", _key({"min_penalty_orders": 100})): Scenario("HUB-4", 125, penalty=125),
    ("P1", _key({"min_affected_orders": 200, "max_minutes_to_promise": 60})): Scenario(
        "HUB-5", 240, promise=timedelta(minutes=45)
    ),
    ("P2", _key({"min_affected_orders": 100})): Scenario("HUB-6", 120),
    ("P2", _key({"min_order_value": 50000})): Scenario("HUB-7", 9, value=7_000.0),
    ("P2", _key({"min_vip_orders": 5})): Scenario("HUB-8", 9, vip=6),
    ("P2", _key({"min_penalty_orders": 10})): Scenario("HUB-9", 12, penalty=11),
    ("P2", _key({"min_affected_orders": 20, "max_minutes_to_promise": 120})): Scenario(
        "HUB-10", 25, promise=timedelta(minutes=95)
    ),
    ("P2", _key({"min_affected_orders": 50, "min_duration": "2h"})): Scenario("HUB-11", 60, arrive=(220, 170)),
    ("P3", _key({"min_affected_orders": 10})): Scenario("HUB-12", 14),
    ("P3", _key({"min_vip_orders": 1})): Scenario("HUB-13", 9, vip=1),
    ("P3", _key({"min_affected_orders": 1, "max_minutes_to_promise": 30})): Scenario(
        "HUB-14", 9, promise=timedelta(minutes=20)
    ),
}

#: Inhibition rules (source kind, target kinds as written) -> the target scenario, whose
#: source is the disruption zone declared over it.
# Spread over hours: the zone's incident (its SKUs are inside from the first arrival on)
# is open long before eight of them have stalled, however fast the worker catches up.
ZONE_TARGET = Scenario("HUB-Z", 14, region=ZHEJIANG, position=ZONE_HUB[1], arrive=(220, 55))
INHIBIT_SCENARIOS: dict[tuple[str, str, tuple[str, ...]], Scenario] = {
    (
        'kind="region_disruption"',
        'kind=~"hub_stall|carrier_slowdown|data_quality|order_late"',
        ("region",),
    ): ZONE_TARGET,
}

BACKGROUND_ORDERS = 2000


def condition_key(condition: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return _key(condition)


def _events(
    order_id: str, t0: datetime, hub: str, hub_at: tuple[float, float], *, stall: bool, common: dict[str, Any]
) -> list[OrderEvent]:
    wh, wh_at = WAREHOUSE
    steps: list[tuple[Status, int, str | None, tuple[float, float] | None]] = [
        (Status.PAID, 0, None, None),
        (Status.PACKED, 1, wh, None),
        (Status.OUTBOUND_SCAN, 2, wh, wh_at),
        (Status.LINEHAUL, 4, wh, wh_at),
        (Status.HUB_ARRIVAL, 30, hub, hub_at),
    ]
    if not stall:
        steps += [(Status.OUT_FOR_DELIVERY, 34, hub, hub_at), (Status.DELIVERED, 38, None, None)]
    out = []
    for n, (status, minutes, node, pos) in enumerate(steps):
        extra: dict[str, Any] = {"node": node} if node else {}
        if pos:
            extra.update(lat=pos[0], lon=pos[1])
        out.append(
            OrderEvent(
                event_id=f"{order_id}-{n}",
                order_id=order_id,
                sku="SKU1",
                status=status,
                event_time=t0 + timedelta(minutes=minutes),
                **common,
                **extra,
            )
        )
    return out


def traffic(start: datetime) -> list[OrderEvent]:
    """Every event, in event-time order; ``start`` is the test's wall-clock start."""
    events: list[OrderEvent] = []
    base = {"source": "test", "warehouse": WAREHOUSE[0], "carrier": "SF", "channel": "tmall"}
    span = 200  # background orders are paid from start - 240 min to start - 40 min
    hubs = list(HEALTHY_HUBS.items())
    for i in range(BACKGROUND_ORDERS):
        t0 = start - timedelta(minutes=240) + timedelta(minutes=span * i / BACKGROUND_ORDERS)
        hub, at = hubs[i % len(hubs)]
        common = {**base, "region": JIANGSU, "promised_by": start + FAR, "order_value": 100.0}
        events += _events(f"BG{i:05d}", t0, hub, at, stall=False, common=common)
    for sc in [*TIER_SCENARIOS.values(), *INHIBIT_SCENARIOS.values()]:
        first, last = sc.arrive
        for i in range(sc.orders):
            arrival = start - timedelta(minutes=first) + timedelta(minutes=(first - last) * i / max(sc.orders, 1))
            common = {
                **base,
                "region": sc.region,
                "promised_by": start + sc.promise,
                "order_value": sc.value,
                "vip": i < sc.vip,
                "attributes": {"penalty": True} if i < sc.penalty else {},
            }
            events += _events(
                f"{sc.hub}-{i:04d}", arrival - timedelta(minutes=30), sc.hub, sc.where(), stall=True, common=common
            )
    # The clock of the timeline: the newest event is at the start (the watermark follows).
    events.sort(key=lambda e: e.event_time)
    return events
