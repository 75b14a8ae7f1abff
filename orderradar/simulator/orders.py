"""Drawing one customer order: channel, destination, basket, value, promise and how it
is split into shipments (warehouse, carrier, backordered lines).

Each order has its own random stream, seeded by the simulation seed and the order's
number, so an order is the same whatever scenarios run around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from stream.contract import SkuClass

from .catalog import (
    CARRIER_BY_ID,
    CARRIER_INDEX,
    CHANNEL_BY_ID,
    CHANNELS,
    Carrier,
    Channel,
    Sku,
    default_catalog,
)
from .durations import CANCEL_AFTER, HOUR_S, end_of_local_day
from .geography import City, destination_weights, jitter
from .network import NODE_BY_ID, WAREHOUSES, Node, warehouses_by_distance
from .randomness import Rng, SplitMix64, Weighted

#: Lines per order (1 to 5 SKUs): most baskets hold one item.
BASKET_SIZE_WEIGHTS = (0.55, 0.22, 0.12, 0.07, 0.04)
#: Quantity per line.
QTY_WEIGHTS: tuple[tuple[int, float], ...] = ((1, 0.78), (2, 0.14), (3, 0.05), (4, 0.015), (6, 0.01), (10, 0.005))
#: Customers' addresses scatter this far (Gaussian sigma) around the city centre.
ADDRESS_SIGMA_KM = 7.0
#: Share of orders shipped from the warehouse nearest the customer; the rest come from
#: one of the next nearest (stock elsewhere), and a few from anywhere in the country.
NEAREST_WAREHOUSE_SHARE = 0.7
REGIONAL_WAREHOUSE_SHARE = 0.22
#: Chance that an extra line ships separately from another warehouse (a split order).
SPLIT_LINE_RATE = 0.12
BACKORDER_LINE_RATE = 0.025
CANCEL_ORDER_RATE = 0.015
VIP_PROMISE_BONUS_H = 12.0


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: Sku
    qty: int


@dataclass(frozen=True, slots=True)
class Shipment:
    """Lines that travel together from one warehouse with one carrier."""

    lines: tuple[OrderLine, ...]
    warehouse: Node
    carrier: Carrier
    backordered: bool


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    number: int
    channel: Channel
    placed_at: float
    dest_city: City
    dest_lat: float
    dest_lon: float
    vip: bool
    value: float
    promised_by: float
    #: When the customer cancels (only acted on before the parcel leaves the warehouse).
    cancel_at: float | None
    shipments: tuple[Shipment, ...]
    promo: str | None

    @property
    def region(self) -> str:
        return self.dest_city.province


def order_id(seed: int, channel: Channel, number: int) -> str:
    """Unique per seed and readable: ``TM-42-00000017`` is tmall order 17 of seed 42."""
    return f"{channel.prefix}-{seed}-{number:08d}"


@cache
def _tables() -> tuple[Weighted[City], Weighted[Channel], Weighted[int], Weighted[int]]:
    cities, weights = destination_weights()
    return (
        Weighted(zip(cities, weights, strict=True)),
        Weighted((c, c.share) for c in CHANNELS),
        Weighted(zip(range(1, 6), BASKET_SIZE_WEIGHTS, strict=True)),
        Weighted(QTY_WEIGHTS),
    )


@cache
def _carrier_table(channel_id: str, needs_cold_chain: bool) -> Weighted[Carrier]:
    options = [(CARRIER_BY_ID[c], float(w)) for c, w in CHANNEL_BY_ID[channel_id].carrier_weights]
    if needs_cold_chain:
        options = [(c, w) for c, w in options if c.cold_chain] or [(CARRIER_BY_ID["SF"], 1.0)]
    return Weighted(options)


def _draw_warehouse(rng: Rng, dest: City) -> Node:
    ranked = warehouses_by_distance(dest.code)
    u = rng.random()
    if u < NEAREST_WAREHOUSE_SHARE:
        return ranked[0]
    if u < NEAREST_WAREHOUSE_SHARE + REGIONAL_WAREHOUSE_SHARE:
        return rng.choice(ranked[1:4])
    return rng.choice(WAREHOUSES)


def _draw_lines(rng: Rng) -> tuple[OrderLine, ...]:
    catalog = default_catalog()
    _, _, basket, quantity = _tables()
    size = basket.draw(rng)
    seen: set[str] = set()
    lines: list[OrderLine] = []
    while len(lines) < size:
        sku = catalog.draw(rng)
        if sku.id in seen:
            continue  # one line per SKU: event ids are per (order, sku)
        seen.add(sku.id)
        lines.append(OrderLine(sku, quantity.draw(rng)))
    return tuple(lines)


def draw_order(
    seed: int, number: int, placed_at: float, channel: Channel | None = None, promo: str | None = None
) -> Order:
    """Order ``number`` of simulation ``seed``, paid at ``placed_at``.

    ``channel`` forces the sales channel (a flash sale on one platform); otherwise it is
    drawn by channel share.
    """
    rng = SplitMix64(f"{seed}:order:{number}")
    destinations, channels, _, _ = _tables()
    drawn = channels.draw(rng)  # drawn even when forced, so the rest of the stream is the same
    channel = channel or drawn
    dest = destinations.draw(rng)
    dest_lat, dest_lon = jitter(rng, dest.lat, dest.lon, ADDRESS_SIGMA_KM)
    vip = rng.random() < channel.vip_share
    lines = _draw_lines(rng)
    cold = any(line.sku.sku_class is SkuClass.COLD_CHAIN for line in lines)
    carrier = _carrier_table(channel.id, cold).draw(rng)
    main_wh = _draw_warehouse(rng, dest)

    groups: dict[tuple[str, bool], list[OrderLine]] = {}
    for i, line in enumerate(lines):
        wh = main_wh
        if i > 0 and rng.random() < SPLIT_LINE_RATE:
            wh = _draw_warehouse(rng, dest)
        backordered = rng.random() < BACKORDER_LINE_RATE
        groups.setdefault((wh.id, backordered), []).append(line)
    shipments = tuple(
        Shipment(tuple(group), NODE_BY_ID[wh_id], carrier, backordered)
        for (wh_id, backordered), group in groups.items()
    )

    local = main_wh.city.province == dest.province
    hours = channel.promise_hours_local if local else channel.promise_hours
    if vip:
        hours = max(12.0, hours - VIP_PROMISE_BONUS_H)
    promised_by = end_of_local_day(placed_at + hours * HOUR_S)
    cancel_at = None
    if rng.random() < CANCEL_ORDER_RATE:
        cancel_at = placed_at + CANCEL_AFTER.draw(rng)
    value = round(sum(line.sku.price * line.qty for line in lines), 2)
    return Order(
        id=order_id(seed, channel, number),
        number=number,
        channel=channel,
        placed_at=placed_at,
        dest_city=dest,
        dest_lat=dest_lat,
        dest_lon=dest_lon,
        vip=vip,
        value=value,
        promised_by=promised_by,
        cancel_at=cancel_at,
        shipments=shipments,
        promo=promo,
    )


def carrier_index(carrier: Carrier) -> int:
    return CARRIER_INDEX[carrier.id]
