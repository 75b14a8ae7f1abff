"""What a customer may see of an order: the projection sent on ``/ws/track``. Pure.

Kept: the normalised status vocabulary (``stream.contract.Status``) per SKU and for the
order, a timeline of ``{status, time}``, promised/ETA times, the worker's status summary
text, a SKU's delay reason *category* when it is a plain token, the customer steps it
passed without a scan (``not_scanned``, milestone names), the delay category of a
disruption zone the order is in (never the zone's name), whether its courier is nearby
(``nearby``: inside the customer area, never the courier's id), and a position. Dropped:
node and warehouse names, regions, carriers, device and courier ids, sources, flags,
event ids, the exact destination, timeline reasons (data-quality notes) and any free text.
Positions are coarsened to 2 decimals (~1 km) except while a SKU is out for delivery
(5 decimals), and removed once it is delivered, returned or cancelled; with a position
come the recent route and the destination's city (``dashboard.gateway.track_map``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from dashboard.gateway.order_snapshot import OrderSnapshot, Position, SkuSnapshot
from dashboard.gateway.track_map import map_view
from dashboard.tracking.milestones import not_scanned_milestones
from stream.contract import Status

#: Statuses after which a customer sees no position at all.
NO_POSITION = frozenset({Status.DELIVERED, Status.RETURN_REQUESTED, Status.RETURNED, Status.CANCELLED})
COARSE_DECIMALS = 2
PRECISE_DECIMALS = 5
#: Newest timeline entries kept per SKU.
MAX_TIMELINE = 50
_REASON = re.compile(r"^[a-z][a-z_]{0,31}$")
_STATUSES = frozenset(s.value for s in Status)

CustomerView = dict[str, Any]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _position(sku: SkuSnapshot, status: Status | None) -> dict[str, Any] | None:
    if sku.position is None or status is None or status in NO_POSITION:
        return None
    precise = status is Status.OUT_FOR_DELIVERY
    decimals = PRECISE_DECIMALS if precise else COARSE_DECIMALS
    view: dict[str, Any] = {
        "lat": round(sku.position.lat, decimals),
        "lon": round(sku.position.lon, decimals),
        "precise": precise,
    }
    if sku.position.time is not None:
        view["time"] = sku.position.time.isoformat()  # the page shows the fix's age
    return view


def _timeline(sku: SkuSnapshot) -> list[dict[str, str]]:
    entries = sorted((e for e in sku.timeline if e.known_status is not None), key=lambda e: e.event_time)
    out: list[dict[str, str]] = []
    for entry in entries:
        if out and out[-1]["status"] == entry.status:
            continue  # a repeated scan of the same status says nothing new to a customer
        out.append({"status": entry.status, "time": entry.event_time.isoformat()})
    return out[-MAX_TIMELINE:]


def _reason(sku: SkuSnapshot) -> str | None:
    if sku.reason is None:
        return None
    return sku.reason if _REASON.match(sku.reason) else "other"


def customer_sku(sku: SkuSnapshot, trail: tuple[Position, ...] = ()) -> dict[str, Any]:
    status = sku.known_status
    timeline = _timeline(sku)
    position = _position(sku, status)
    view: dict[str, Any] = {
        "status": status.value if status is not None else None,
        "since": sku.status_time.isoformat() if sku.status_time else (timeline[-1]["time"] if timeline else None),
        "timeline": timeline,
        "position": position,
        **map_view(sku, trail, position, COARSE_DECIMALS, PRECISE_DECIMALS),
    }
    paid = sku.stage_times.get(Status.PAID.value)
    if paid is not None:
        view["ordered_at"] = paid.isoformat()  # the first milestone's time, even past the timeline cap
    if sku.qty is not None:
        view["qty"] = sku.qty
    if sku.promised_by is not None:
        view["promised_by"] = sku.promised_by.isoformat()
    if sku.eta is not None:
        view["eta"] = sku.eta.isoformat()
    skipped = not_scanned_milestones(
        (e.known_status for e in sku.timeline if e.known_status is not None),
        (s for s in sku.not_scanned if s in _STATUSES),
    )
    if skipped:
        view["not_scanned"] = [m.value for m in skipped]
    if status in (Status.EXCEPTION, Status.DELIVERY_FAILED, Status.BACKORDERED):
        reason = _reason(sku)
        if reason is not None:
            view["reason"] = reason
    return view


@dataclass(frozen=True, slots=True)
class OrderView:
    """The customer view in the compact form the cache and messages keep.

    Each SKU's view is stored serialised (one ``bytes`` object instead of dozens of dicts
    and strings): tens of thousands of cached orders with their delta buffers would
    otherwise be millions of objects for the garbage collector to walk. Serialisation is
    deterministic, so equal bytes mean an unchanged SKU.
    """

    #: Order-level fields: :data:`HEADER_FIELDS`.
    header: dict[str, Any]
    skus: dict[str, bytes]

    def as_dict(self) -> CustomerView:
        return {**self.header, "skus": {sku: orjson.loads(data) for sku, data in self.skus.items()}}


#: Order-level fields every delta repeats (small; the SKUs are the bulk).
HEADER_FIELDS = ("status", "updated_at", "promised_by", "eta", "eta_window", "summary", "delay", "nearby")


def _delay(snapshot: OrderSnapshot, window: dict[str, Any] | None) -> dict[str, Any] | None:
    """The delay notice: a disruption zone's customer-safe category (never zone names), else
    the order's own delay (``at_risk``/``late`` from the worker's ETA), with the new window."""
    reason = snapshot.disruption_reason()
    state = window.get("state") if window is not None else None
    if reason is None and state not in ("at_risk", "late"):
        return None
    delay: dict[str, Any] = {"reason": reason if reason is None or _REASON.match(reason) else "other"}
    if reason is None:
        delay["reason"] = state
    if window is not None:
        delay["eta"] = {k: window[k] for k in ("from", "to", "tz_offset_min")}
    return delay


def order_view(snapshot: OrderSnapshot) -> OrderView:
    status = snapshot.rollup_status
    window = snapshot.eta_window()
    header = {
        "status": status.value if status is not None else None,
        "updated_at": _iso(snapshot.updated_at),
        "promised_by": _iso(snapshot.rollup_time("promised_by")),
        "eta": _iso(snapshot.rollup_time("eta")),
        "eta_window": window,
        "summary": snapshot.rollup_summary(),
        "delay": _delay(snapshot, window),
        "nearby": snapshot.courier_nearby(),
    }
    skus = {
        sku_id: orjson.dumps(customer_sku(sku, snapshot.trail(sku_id))) for sku_id, sku in sorted(snapshot.skus.items())
    }
    return OrderView(header, skus)


def customer_view(snapshot: OrderSnapshot) -> CustomerView:
    """The whole customer-visible state of one order (without ``seq``), as plain JSON data."""
    return order_view(snapshot).as_dict()


def empty_view() -> OrderView:
    """The view of an order this instance has no update for yet (``seq`` 0)."""
    return OrderView(dict.fromkeys(HEADER_FIELDS), {})


def sku_changes(old: OrderView, new: OrderView) -> tuple[dict[str, bytes], tuple[str, ...]]:
    """SKUs whose customer view changed (full SKU view each) and SKUs that disappeared."""
    changed = {sku: data for sku, data in new.skus.items() if old.skus.get(sku) != data}
    removed = tuple(sorted(sku for sku in old.skus if sku not in new.skus))
    return changed, removed
