"""Staff read APIs, answered from what this instance's consumers have seen.

* ``GET /api/v1/orders/{order_id}``: the worker's latest snapshot of the order, unchanged
  (rollup, SKUs with stage times, last position and timeline); 404 when not cached.
* ``GET /api/v1/incidents?state=open``: incidents, newest first.
* ``GET /api/v1/alerts?status=firing``: alert summaries, newest first.
* ``GET /api/v1/silences?active=true``: silences.
* ``GET /api/v1/disruptions``: active disruption zones.

``limit`` (default 200, at most 1000) caps each list. Any staff role may read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dashboard.gateway.responses import error_response, json_response, raw_json_response
from dashboard.gateway.sessions import authorise, gateway_of
from dashboard.gateway.staff import Permission

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


def _limit(request: Request) -> int:
    try:
        return max(1, min(MAX_LIMIT, int(request.query_params.get("limit", DEFAULT_LIMIT))))
    except ValueError:
        return DEFAULT_LIMIT


def _newest_first(items: list[Any], field: str) -> list[Any]:
    return sorted(items, key=lambda item: str(item.get(field) or ""), reverse=True)


def _listing(request: Request, channel: str, filter_field: str | None, time_field: str) -> Response:
    denied = authorise(request, Permission.VIEW)
    if isinstance(denied, Response):
        return denied
    items = gateway_of(request).warroom.items(channel)
    wanted = request.query_params.get(filter_field) if filter_field else None
    if wanted is not None:
        items = [item for item in items if str(item.get(filter_field)).lower() == wanted.lower()]
    items = _newest_first(items, time_field)[: _limit(request)]
    return json_response({"items": items, "count": len(items)})


async def get_order(request: Request) -> Response:
    denied = authorise(request, Permission.VIEW)
    if isinstance(denied, Response):
        return denied
    entry = gateway_of(request).orders.get(request.path_params["order_id"])
    if entry is None:
        return error_response(404, "not_found", "no recent update for this order on this instance")
    return raw_json_response(entry.raw)


async def list_incidents(request: Request) -> Response:
    return _listing(request, "incident", "state", "updated_at")


async def list_alerts(request: Request) -> Response:
    return _listing(request, "alert", "status", "updated_at")


async def list_silences(request: Request) -> Response:
    return _listing(request, "silence", "active", "created_at")


async def list_disruptions(request: Request) -> Response:
    denied = authorise(request, Permission.VIEW)
    if isinstance(denied, Response):
        return denied
    gateway = gateway_of(request)
    now = gateway.clock()
    active = [z for z in gateway.warroom.items("disruption") if _not_ended(z, now)]
    items = _newest_first(active, "created_at")[: _limit(request)]
    return json_response({"items": items, "count": len(items)})


def _not_ended(zone: dict[str, Any], now: datetime) -> bool:
    ends = zone.get("ends_at")
    return not isinstance(ends, str) or datetime.fromisoformat(ends) > now
