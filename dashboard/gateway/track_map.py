"""What a customer's map may show besides the current position: the route and the area.

- **route**: the SKU's recent fixes from the worker (``extensions.trail``, at most
  :data:`MAX_ROUTE`, the last two hours), oldest first, as ``[lat, lon]`` pairs. Fixes since
  the SKU went out for delivery keep the precise position's decimals while it is out for
  delivery; every other fix is coarsened like a coarse position (~1 km), and consecutive
  equal points are merged. No route once the customer sees no position at all.
- **city** (the destination): never the address. The seat of the prefecture-level city the stop lies
  in (``city``: ``{"lat", "lon", "adcode"}``, :mod:`dashboard.tracking.areas`); nothing for a stop outside
  China's prefectures, where no area is known.

Pure; the customer projection (``dashboard.gateway.projection``) calls :func:`map_view`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dashboard.gateway.order_snapshot import Position, SkuSnapshot
from dashboard.tracking.areas import area_index
from stream.contract import Status

#: Newest route points a customer gets per SKU (the worker keeps as many, for two hours).
MAX_ROUTE = 50


def _route(trail: Sequence[Position], precise_since: datetime | None, coarse: int, precise: int) -> list[list[float]]:
    out: list[list[float]] = []
    for fix in trail[-MAX_ROUTE:]:
        sharp = precise_since is not None and fix.time is not None and fix.time >= precise_since
        decimals = precise if sharp else coarse
        point = [round(fix.lat, decimals), round(fix.lon, decimals)]
        if not out or out[-1] != point:
            out.append(point)
    return out


def destination_area(sku: SkuSnapshot) -> dict[str, Any] | None:
    """The seat of the stop's prefecture (``None``: no stop, or outside every known area)."""
    if sku.destination is None:
        return None
    seat = area_index().seat_of(sku.destination.lon, sku.destination.lat)
    if seat is None:
        return None
    return {"lat": seat.lat, "lon": seat.lon, "adcode": seat.adcode}


def map_view(
    sku: SkuSnapshot,
    trail: Sequence[Position],
    position: dict[str, Any] | None,
    coarse_decimals: int,
    precise_decimals: int,
) -> dict[str, Any]:
    """``route`` and ``city`` to add to a SKU's customer view; ``position`` is the
    projection's customer position (``None``: the customer sees none, so no route either)."""
    view: dict[str, Any] = {}
    if position is None:
        return view
    precise_since = None
    if position.get("precise"):
        precise_since = sku.stage_times.get(Status.OUT_FOR_DELIVERY.value) or sku.status_time
    route = _route(trail, precise_since, coarse_decimals, precise_decimals)
    if route:
        view["route"] = route
    destination = destination_area(sku)
    if destination is not None:
        view["city"] = destination
    return view
