"""Simulated order flow for the war-room tests (``orderradar.simulator``), fed to the real
worker by the browser tests.

``heatmap`` and ``kpis`` build war-room items in the documented format
(``dashboard.warroom.live``) for tests of the page alone, without a worker
(``test_page_quality``); the browser tests show what the worker publishes.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import h3

from orderradar.simulator.emission import Emission
from orderradar.simulator.generator import TrafficGenerator, TrafficProfile
from orderradar.simulator.network import Node
from stream.contract import CLOSED, OrderEvent, Status

#: The worker's heatmap resolutions (``stream.stages.geo_stage.HEATMAP_RESOLUTIONS``).
RESOLUTIONS = (3, 5)
#: SKUs whose last scan is older than this (in transit) count as stalled.
STALL_AFTER = timedelta(minutes=25)
AT_RISK_WITHIN = timedelta(hours=20)
SLOW_CARRIERS = frozenset({"ZTO", "YTO"})


def simulate(now: datetime, minutes: int = 40, orders_per_day: float = 30_000, seed: int = 7) -> list[Emission]:
    # A day and a half of warm-up puts parcels in every stage whatever the time of day the
    # test runs (half a day left the map's centre without parcels from about 10:00 China time).
    profile = TrafficProfile(orders_per_day=orders_per_day, warmup_s=36 * 3600)
    return TrafficGenerator(seed, now - timedelta(minutes=minutes), profile).take_until(now)


def latest_per_sku(events: Iterable[OrderEvent]) -> dict[tuple[str, str], OrderEvent]:
    latest: dict[tuple[str, str], OrderEvent] = {}
    for event in events:
        key = (event.order_id, event.sku)
        if key not in latest or event.event_time >= latest[key].event_time:
            latest[key] = event
    return latest


def state_at(event: OrderEvent, now: datetime) -> str:
    """The delay state of a SKU line whose latest event is ``event``, at ``now`` (a stand-in
    for ``stream.core.delays``, coarse but deterministic)."""
    if event.promised_by is not None and event.promised_by < now:
        return "late"
    if (
        event.status in (Status.LINEHAUL, Status.HUB_ARRIVAL, Status.OUTBOUND_SCAN)
        and now - event.event_time > STALL_AFTER
    ):
        return "stalled"
    if event.promised_by is not None and event.promised_by - now < AT_RISK_WITHIN:
        return "at_risk"
    # A steady background of at-risk lines where the simulated carrier is slow (stand-in
    # for the lane statistics' p90 prediction), so the national map is not uniformly green.
    if event.carrier in SLOW_CARRIERS and zlib.crc32(event.order_id.encode()) % 4 == 0:
        return "at_risk"
    return "on_track"


def _position(event: OrderEvent) -> tuple[float, float] | None:
    if event.lat is not None and event.lon is not None:
        return event.lat, event.lon
    if event.dest_lat is not None and event.dest_lon is not None:
        return event.dest_lat, event.dest_lon
    return None


def heatmap(events: Iterable[OrderEvent], now: datetime, stalled_near: Node | None = None) -> dict[str, dict[str, Any]]:
    """``heatmap`` items per H3 cell (at each of :data:`RESOLUTIONS`, as the worker sends
    them) of the in-flight SKUs' last known positions; with ``stalled_near``, every SKU within
    two rings of that hub is stalled (the outage)."""
    fine = max(RESOLUTIONS)
    hub = h3.latlng_to_cell(stalled_near.lat, stalled_near.lon, fine) if stalled_near else None
    outage = set(h3.grid_disk(hub, 2)) if hub else set()
    cells: dict[str, dict[str, Any]] = {}
    orders: dict[str, set[str]] = defaultdict(set)
    for event in latest_per_sku(events).values():
        position = _position(event)
        if event.status in CLOSED or position is None:
            continue
        state = "stalled" if h3.latlng_to_cell(position[0], position[1], fine) in outage else state_at(event, now)
        for res in RESOLUTIONS:
            cell = h3.latlng_to_cell(position[0], position[1], res)
            item = cells.setdefault(
                cell,
                {
                    "type": "heatmap",
                    "key": cell,
                    "cell": cell,
                    "res": res,
                    "region": event.region,
                    "skus": 0,
                    "orders": 0,
                    "at_risk": 0,
                    "late": 0,
                    "stalled": 0,
                    "at": now.isoformat(),
                },
            )
            item["skus"] += 1
            orders[cell].add(event.order_id)
            if state in ("at_risk", "late", "stalled"):
                item[state] += 1
    for cell, item in cells.items():
        item["orders"] = len(orders[cell])
    return cells


def kpis(cells: dict[str, dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The national ``kpis`` item of ``cells`` (counted at one resolution)."""
    one = [c for c in cells.values() if c["res"] == max(RESOLUTIONS)]
    total = sum(c["skus"] for c in one)
    bad = {k: sum(c[k] for c in one) for k in ("at_risk", "late", "stalled")}
    return {
        "type": "kpis",
        "key": "national",
        "skus_in_flight": total,
        "orders_in_flight": sum(c["orders"] for c in one),
        "on_time_rate": round(1 - bad["late"] / total, 4) if total else None,
        **bad,
        "at": now.isoformat(),
    }


def utc_now() -> datetime:
    return datetime.now(UTC)
