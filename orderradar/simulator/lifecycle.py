"""The life of one shipment, written as a process: it yields each scan (a :class:`Step`
at a planned time) and is sent back the time the scan really happened, which is later
when a scenario held it (a hub outage, a typhoon). Every status it yields follows the
legal transitions of ``stream.contract``:

    paid [-> backordered] [-> picked] -> packed [-> outbound_scan] -> linehaul (+ GPS fixes)
      -> hub_arrival [-> exception] -> linehaul ... (1 to 3 hubs) -> out_for_delivery
      -> delivered | delivery_failed -> out_for_delivery ...
    paid/backordered/picked/packed -> cancelled   (customer cancelled before dispatch)

Brackets mark scans that are sometimes missed, as they are in real feeds.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from stream.contract import Status

from . import durations as d
from .catalog import AIR_MIN_KM, Carrier
from .geography import interpolate, jitter, offset_km
from .network import Node, node_distance_km, plan_hubs
from .orders import Order, Shipment, carrier_index
from .randomness import Rng

AttrValue = str | int | float | bool

MISSED_PICK_SCAN = 0.02
MISSED_OUTBOUND_SCAN = 0.03
MISSED_HUB_SCAN = 0.01
HUB_EXCEPTION_RATE = 0.004
MAX_DELIVERY_ATTEMPTS = 3
COURIERS_PER_CITY = 60
#: Fixes of a courier on a round lie this far (sigma) from the customer.
ROUND_FIX_SIGMA_KM = 1.2
LANE_JITTER_KM = 0.3
DOORSTEP_JITTER_KM = 0.015

EXCEPTION_REASONS = ("damaged_packaging", "label_unreadable", "weight_mismatch")
FAILURE_REASONS = ("recipient_absent", "recipient_absent", "address_issue", "phone_unreachable")

#: Seconds between successive lines of one scan (picking walks the aisles; a parcel
#: scan records all its lines at once, a few seconds apart on the wire).
PICK_GAP = (15.0, 240.0)
SCAN_GAP = (0.5, 4.0)


@dataclass(frozen=True, slots=True)
class Step:
    """One scan of a shipment: each of its lines becomes one event."""

    status: Status
    at: float
    source: str
    node: Node | None = None
    lat: float | None = None
    lon: float | None = None
    device_id: str | None = None
    courier_id: str | None = None
    line_gap: tuple[float, float] = SCAN_GAP
    attributes: dict[str, AttrValue] = field(default_factory=dict)


#: ``slowdown(carrier_id, nodes, at) -> factor`` for a stage touching ``nodes``.
Slowdown = Callable[[str, tuple[Node, ...], float], float]
Process = Generator[Step, float, None]


def _factor(slowdown: Slowdown, carrier: Carrier, at: float, *nodes: Node) -> float:
    """Duration multiplier of a stage starting at ``at`` that touches ``nodes``."""
    return carrier.speed_factor * slowdown(carrier.id, nodes, at)


def _cancelled_by(order: Order, at: float) -> bool:
    return order.cancel_at is not None and order.cancel_at <= at


def _cancel(order: Order, now: float) -> Step:
    return Step(
        Status.CANCELLED,
        max(now, order.cancel_at or now) + 1.0,
        f"{order.channel.id}-oms",
        attributes={"reason": "customer_request"},
    )


def _device(node: Node, kind: str, count: int, rng: Rng) -> str:
    """One of the ``count`` scanners of ``kind`` at ``node``."""
    return f"{node.id}-{kind}-{rng.randint(1, count):02d}"


def _node_scan(
    status: Status,
    at: float,
    source: str,
    node: Node,
    device_id: str | None,
    line_gap: tuple[float, float] = SCAN_GAP,
    attributes: dict[str, AttrValue] | None = None,
) -> Step:
    """A scan at a fixed place (warehouse, hub, station), at the place's coordinates."""
    return Step(status, at, source, node, node.lat, node.lon, device_id, line_gap=line_gap, attributes=attributes or {})


#: A warehouse scan: its status, the scanner kind and how many of them, the share of these
#: scans that are missed, and the gap between the shipment's lines.
_WarehouseStage = tuple[Status, str, int, float, tuple[float, float]]
PICK: _WarehouseStage = (Status.PICKED, "PDA", 12, MISSED_PICK_SCAN, PICK_GAP)
PACK: _WarehouseStage = (Status.PACKED, "PACK", 6, 0.0, SCAN_GAP)
OUTBOUND: _WarehouseStage = (Status.OUTBOUND_SCAN, "DOCK", 4, MISSED_OUTBOUND_SCAN, SCAN_GAP)


def _warehouse_scan(
    order: Order, wh: Node, rng: Rng, t: float, at: float, stage: _WarehouseStage
) -> Generator[Step, float, float | None]:
    """The scan of ``stage`` due at ``at``; the time it happened (``at`` when it was missed),
    or ``None`` when the customer cancelled first (the cancellation is yielded instead)."""
    status, kind, count, missed, gap = stage
    if _cancelled_by(order, at):
        yield _cancel(order, t)
        return None
    if missed and rng.random() < missed:
        return at
    return (yield _node_scan(status, at, "wms", wh, _device(wh, kind, count, rng), gap))


def shipment_process(order: Order, shipment: Shipment, rng: Rng, slowdown: Slowdown, gps_interval_s: float) -> Process:
    """Yield the scans of ``shipment``; receive the actual time of each.

    (Helpers are module functions, not closures: hundreds of thousands of these
    processes are alive at once, and every closure costs memory in each.)
    """
    carrier = shipment.carrier
    wh = shipment.warehouse
    tms = f"{carrier.id.lower()}-tms"
    pda = f"{carrier.id.lower()}-pda"

    t = yield Step(
        Status.PAID,
        order.placed_at,
        f"{order.channel.id}-oms",
        line_gap=(0.0, 0.0),
        attributes={"promo": order.promo} if order.promo else {},
    )

    if shipment.backordered:
        t = yield _node_scan(
            Status.BACKORDERED, t + rng.uniform(60, 600), "wms", wh, None, attributes={"reason": "out_of_stock"}
        )
        t += d.RESTOCK.draw(rng)

    # Warehouse: picking and packing happen in shifts.
    for stage, wait in ((PICK, d.PICK_WAIT), (PACK, d.PICK_TO_PACK)):
        at = d.within_hours(
            t + wait.draw(rng, _factor(slowdown, carrier, t, wh)), d.WAREHOUSE_OPEN_H, d.WAREHOUSE_CLOSE_H
        )
        scanned = yield from _warehouse_scan(order, wh, rng, t, at, stage)
        if scanned is None:
            return
        t = scanned

    # Carrier pickup waves at the dock.
    wave = d.next_time_of_day(t + d.PACK_TO_DOCK.draw(rng), d.PICKUP_WAVES_H)
    scan_at = wave + d.WAVE_SCAN_SPREAD.draw(rng, _factor(slowdown, carrier, wave, wh))
    scanned = yield from _warehouse_scan(order, wh, rng, t, scan_at, OUTBOUND)
    if scanned is None:
        return
    t = scanned
    t += d.SCAN_TO_DEPART.draw(rng, _factor(slowdown, carrier, t, wh))

    hubs = plan_hubs(wh.id, order.dest_city.code, carrier_index(carrier))
    here: Node = wh
    for i, hub in enumerate(hubs):
        t = yield from _leg(here, hub, t, rng, carrier, tms, slowdown, gps_interval_s)
        if rng.random() >= MISSED_HUB_SCAN or i == len(hubs) - 1:
            t = yield _node_scan(
                Status.HUB_ARRIVAL,
                t,
                tms,
                hub,
                _device(hub, "SCN", 4, rng),
                attributes={"hub_seq": i + 1, "hub_count": len(hubs)},
            )
            if rng.random() < HUB_EXCEPTION_RATE:
                t = yield _node_scan(
                    Status.EXCEPTION,
                    t + d.EXCEPTION_AFTER.draw(rng),
                    tms,
                    hub,
                    _device(hub, "SCN", 4, rng),
                    attributes={"reason": rng.choice(EXCEPTION_REASONS)},
                )
                t += d.EXCEPTION_RESOLVE.draw(rng, _factor(slowdown, carrier, t, hub))
        if i < len(hubs) - 1:
            t += d.HUB_DWELL.draw(rng, _factor(slowdown, carrier, t, hub))
        here = hub

    # Last mile: courier rounds from the destination hub.
    station = here
    courier = f"{carrier.id}-{order.dest_city.code}-{rng.randint(1, COURIERS_PER_CITY):03d}"
    ready = t + d.SORT_BEFORE_ROUND.draw(rng, _factor(slowdown, carrier, t, station))
    for attempt in range(1, MAX_DELIVERY_ATTEMPTS + 1):
        round_start = d.next_time_of_day(ready, d.DELIVERY_ROUNDS_H)
        # The courier's fix when the round reaches this customer's area: on the way
        # from the station, in the last few km.
        near = interpolate(station.lat, station.lon, order.dest_lat, order.dest_lon, rng.uniform(0.85, 0.97))
        fix_lat, fix_lon = jitter(rng, near[0], near[1], ROUND_FIX_SIGMA_KM)
        t = yield Step(
            Status.OUT_FOR_DELIVERY,
            round_start + d.ROUND_DISPATCH_SPREAD.draw(rng),
            pda,
            node=station,
            lat=fix_lat,
            lon=fix_lon,
            device_id=f"{courier}-PDA",
            courier_id=courier,
            attributes={"attempt": attempt},
        )
        done_at = t + d.DELIVERY.draw(rng, _factor(slowdown, carrier, t, station))
        door_lat, door_lon = jitter(rng, order.dest_lat, order.dest_lon, DOORSTEP_JITTER_KM)
        failed = rng.random() < carrier.failure_rate
        attempted: dict[str, AttrValue] = {"attempt": attempt}
        if failed:
            attempted["reason"] = rng.choice(FAILURE_REASONS)
        t = yield Step(
            Status.DELIVERY_FAILED if failed else Status.DELIVERED,
            done_at,
            pda,
            lat=door_lat,
            lon=door_lon,
            device_id=f"{courier}-PDA",
            courier_id=courier,
            attributes=attempted,
        )
        if not failed:
            return
        ready = t + d.HOUR_S
    # Three failed attempts: the parcel goes back to the station and waits there.
    yield _node_scan(
        Status.HUB_ARRIVAL,
        t + d.RETURN_TO_STATION.draw(rng),
        tms,
        station,
        _device(station, "SCN", 4, rng),
        attributes={"reason": "returned_to_station"},
    )


def _leg(
    origin: Node,
    dest: Node,
    depart: float,
    rng: Rng,
    carrier: Carrier,
    source: str,
    slowdown: Slowdown,
    gps_interval_s: float,
) -> Generator[Step, float, float]:
    """Departure scan, GPS fixes along the lane, and the arrival time at ``dest``.

    A fix held by a scenario (the truck stopped) shifts the rest of the leg by the delay,
    so the truck resumes from where it stood.
    """
    km = node_distance_km(origin, dest)
    air = km >= AIR_MIN_KM and rng.random() < carrier.air_share
    f = _factor(slowdown, carrier, depart, origin, dest)
    duration = d.air_seconds(rng, km, f) if air else d.truck_seconds(rng, km, f)
    vehicle = f"{carrier.id}-{'F' if air else 'V'}{rng.randint(1, 9999):04d}"
    # ``next_node``: the hub expected to scan the parcel next (a stopped hub strands its inbound too).
    attrs: dict[str, AttrValue] = {
        "leg": f"{origin.id}>{dest.id}",
        "next_node": dest.id,
        "mode": "air" if air else "truck",
    }
    actual = yield _node_scan(Status.LINEHAUL, depart, source, origin, vehicle, attributes=attrs)
    start = actual
    arrive = actual + duration
    if air:
        return arrive  # no GPS over the air; the next scan is the arrival
    planned = start + gps_interval_s
    while planned < arrive - 60.0:
        frac = (planned - start) / (arrive - start)
        lat, lon = interpolate(origin.lat, origin.lon, dest.lat, dest.lon, frac)
        # Trucks drive roads, not straight lines: a small cross-track wobble.
        wobble = offset_km(lat, lon, rng.gauss(0.0, 2.0), rng.gauss(0.0, 2.0)) if 0.05 < frac < 0.95 else (lat, lon)
        fix_lat, fix_lon = jitter(rng, wobble[0], wobble[1], LANE_JITTER_KM)
        actual = yield Step(
            Status.LINEHAUL, planned, source, lat=fix_lat, lon=fix_lon, device_id=vehicle, attributes=attrs
        )
        delay = actual - planned
        start += delay
        arrive += delay
        planned = actual + gps_interval_s
    return arrive
