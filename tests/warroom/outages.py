"""Hub outages the real worker turns into incidents and alerts, for the war-room tests.

``tests/stream_stages/stages_scenario.py`` builds a small parcel network with one stalled
hub and SLA rules scaled to minutes (the worker opens one hub incident on it). Here that
network is laid out several times side by side, each copy with its own hub names and
positions (``HUB-A1``, ``HUB-A2``, ...), so each copy's stalled hub gets its own incident,
its own alert, and the war-room test can ack one, silence another and watch a third one
escalate.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from stages_scenario import DOWN_HUB, HUBS, Sent, fast_rules, outage_traffic

from stream.contract import OrderEvent, Status

__all__ = ["Sent", "abroad_stalls", "down_hubs", "fast_rules", "hub_outages"]

#: Latitude step between copies: distinct H3 cells, still within the warehouses' reach.
SHIFT_DEG = 0.15


def hub_name(hub: str, copy: int) -> str:
    return f"{hub}{copy}"


def down_hubs(copies: int) -> list[str]:
    return [hub_name(DOWN_HUB, k) for k in range(1, copies + 1)]


def hub_outages(start: datetime, minutes: int, outage_after: int, copies: int, stagger: int = 0) -> list[Sent]:
    """``outage_traffic`` once per copy, each with its own orders and hubs, in arrival order;
    copy ``k``'s hub stalls ``stagger`` minutes after copy ``k - 1``'s."""
    out: list[Sent] = []
    for k in range(1, copies + 1):
        for sent in outage_traffic(start, minutes, outage_after + (k - 1) * stagger):
            event = sent.event
            update: dict[str, object] = {"order_id": f"C{k}{event.order_id}", "event_id": f"C{k}{event.event_id}"}
            if event.node in HUBS:
                lat, lon = HUBS[event.node]
                update.update(node=hub_name(event.node, k), lat=lat + SHIFT_DEG * k, lon=lon)
            out.append(Sent(event.model_copy(update=update), sent.received))
    out.sort(key=lambda s: s.received)
    return out


#: A warehouse and a hub in São Paulo: an import outside the map area (China).
ABROAD_WAREHOUSE = ("WH-SP", (-23.55, -46.63))
ABROAD_HUB = ("HUB-SP", (-23.35, -46.55))
#: Fewer than an incident needs (``min_count``): counted by the KPIs, no incident or alert.
ABROAD_ORDERS = 6


def abroad_stalls(start: datetime, orders: int = ABROAD_ORDERS) -> list[Sent]:
    """``orders`` parcels from São Paulo that reach their hub and stall there (no scan after
    the hub arrival), each one minute after the other from ``start``."""
    (wh, wh_pos), (hub, hub_pos) = ABROAD_WAREHOUSE, ABROAD_HUB
    out: list[Sent] = []
    for i in range(orders):
        order_id = f"BR{i:03d}"
        t0 = start + timedelta(minutes=i)
        common: dict[str, Any] = {
            "order_id": order_id,
            "sku": "SKU1",
            "source": "test",
            "warehouse": wh,
            "carrier": "SF",
            "region": "São Paulo",
            "channel": "olist-marketplace",
        }
        steps = [
            (Status.PAID, 0, None, None),
            (Status.PACKED, 1, wh, None),
            (Status.OUTBOUND_SCAN, 2, wh, wh_pos),
            (Status.LINEHAUL, 4, wh, wh_pos),
            (Status.HUB_ARRIVAL, 30, hub, hub_pos),
        ]
        for n, (status, dt, node, pos) in enumerate(steps):
            extra: dict[str, Any] = {"node": node} if node else {}
            if pos:
                extra.update(lat=pos[0], lon=pos[1])
            at = t0 + timedelta(minutes=dt)
            out.append(
                Sent(
                    OrderEvent(event_id=f"{order_id}-{n}", status=status, event_time=at, **common, **extra),
                    at + timedelta(seconds=2),
                )
            )
    return out
