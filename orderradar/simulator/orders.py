"""Drawing one customer order: channel, destination, basket, value, promise and how it
is split into shipments (warehouse, carrier, backordered lines).

Each order has its own random stream, seeded by the simulation seed and the order's
number, so an order is the same whatever scenarios run around it.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from functools import cache

from stream.contract import SkuClass

from .catalog import (
    CARRIER_BY_ID,
    CARRIER_INDEX,
    CHANNELS,
    Carrier,
    Channel,
    Sku,
    default_catalog,
)
from .durations import HOUR_S, end_of_local_day
from .geography import City, destination_weights, jitter
from .network import WAREHOUSES, Node, warehouses_by_distance

#: Lines per order (1 to 5 SKUs): most baskets hold one item.
BASKET_SIZE_WEIGHTS = (0.55, 0.22, 0.12, 0.07, 0.04)
#: Quantity per line.
QTY_WEIGHTS = ((1, 0.78), (2, 0.14), (3, 0.05), (4, 0.015), (6, 0.01), (10, 0.005))
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
VIP_PROMISE_BONUS_H = 24.0


@dataclass(frozen=True)
class OrderLine:
    sku: Sku
    qty: int


@dataclass(frozen=True)
class Shipment:
    """Lines that travel together from one warehouse with one carrier."""

    lines: tuple[OrderLine, ...]
    warehouse: Node
    carrier: Carrier
    backordered: bool


@dataclass(frozen=True)
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

    @property
    def lines(self) -> tuple[OrderLine, ...]:
        return tuple(line for s in self.shipments for line in s.lines)


def order_id(seed: int, channel: Channel, number: int) -> str:
    """Unique per seed and readable: ``TM-42-00000017`` is tmall order 17 of seed 42."""
    return f"{channel.prefix}-{seed}-{number:08d}"


@cache
def _destination_table() -> tuple[tuple[City, ...], tuple[float, ...]]:
    cities, weights = destination_weights()
    return cities, tuple(itertools.accumulate(weights))


def _pick(rng: random.Random, cumulative: tuple[float, ...]) -> int:
    return bisect.bisect_left(cumulative, rng.random() * cumulative[-1])


def _draw_carrier(rng: random.Random, channel: Channel, needs_cold_chain: bool) -> Carrier:
    options = [(CARRIER_BY_ID[c], w) for c, w in channel.carrier_weights]
    if needs_cold_chain:
        options = [(c, w) for c, w in options if c.cold_chain] or [(CARRIER_BY_ID["SF"], 1.0)]
    carriers = [c for c, _ in options]
    return rng.choices(carriers, [w for _, w in options])[0]


def _draw_warehouse(rng: random.Random, dest: City) -> Node:
    ranked = warehouses_by_distance(dest.code)
    u = rng.random()
    if u < NEAREST_WAREHOUSE_SHARE:
        return ranked[0]
    if u < NEAREST_WAREHOUSE_SHARE + REGIONAL_WAREHOUSE_SHARE:
        return rng.choice(ranked[1:4])
    return rng.choice(WAREHOUSES)


def _draw_lines(rng: random.Random) -> tuple[OrderLine, ...]:
    catalog = default_catalog()
    size = rng.choices(range(1, 6), BASKET_SIZE_WEIGHTS)[0]
    seen: set[str] = set()
    lines = []
    while len(lines) < size:
        sku = catalog.draw(rng)
        if sku.id in seen:
            continue  # one line per SKU: event ids are per (order, sku)
        seen.add(sku.id)
        qty = rng.choices([q for q, _ in QTY_WEIGHTS], [w for _, w in QTY_WEIGHTS])[0]
        lines.append(OrderLine(sku, qty))
    return tuple(lines)


def draw_order(
    seed: int, number: int, placed_at: float, channel: Channel | None = None, promo: str | None = None
) -> Order:
    """Order ``number`` of simulation ``seed``, paid at ``placed_at``.

    ``channel`` forces the sales channel (a flash sale on one platform); otherwise it is
    drawn by channel share.
    """
    rng = random.Random(f"{seed}:order:{number}")
    if channel is None:
        channel = rng.choices(CHANNELS, [c.share for c in CHANNELS])[0]
    else:
        rng.random()  # keep the stream aligned with unforced orders
    cities, cumulative = _destination_table()
    dest = cities[_pick(rng, cumulative)]
    dest_lat, dest_lon = jitter(rng, dest.lat, dest.lon, ADDRESS_SIGMA_KM)
    vip = rng.random() < channel.vip_share
    lines = _draw_lines(rng)
    cold = any(line.sku.sku_class is SkuClass.COLD_CHAIN for line in lines)
    carrier = _draw_carrier(rng, channel, cold)
    main_wh = _draw_warehouse(rng, dest)

    groups: dict[tuple[str, bool], list[OrderLine]] = {}
    for i, line in enumerate(lines):
        wh = main_wh
        if i > 0 and rng.random() < SPLIT_LINE_RATE:
            wh = _draw_warehouse(rng, dest)
        backordered = rng.random() < BACKORDER_LINE_RATE
        groups.setdefault((wh.id, backordered), []).append(line)
    by_id = {w.id: w for w in WAREHOUSES}
    shipments = tuple(
        Shipment(tuple(group), by_id[wh_id], carrier, backordered)
        for (wh_id, backordered), group in groups.items()
    )

    local = main_wh.city.province == dest.province
    hours = channel.promise_hours_local if local else channel.promise_hours
    if vip:
        hours = max(12.0, hours - VIP_PROMISE_BONUS_H)
    promised_by = end_of_local_day(placed_at + hours * HOUR_S)
    cancel_at = None
    if rng.random() < CANCEL_ORDER_RATE:
        cancel_at = placed_at + rng.expovariate(1 / (50 * 60.0))
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
