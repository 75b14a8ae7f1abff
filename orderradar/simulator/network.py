"""The physical network: fulfilment centres, sorting hubs and the route a parcel takes.

A parcel leaves a warehouse, is sorted at 1 to 3 hubs (the origin city's hub, for long
hauls a gateway hub near the midpoint, the destination city's hub) and is delivered from
the last one. Multi-hub cities give each carrier its own hub, as real carriers run
separate sorting centres. Hub ids are ``<city code>-<n>`` (``HZ-3``), warehouse ids
``<city code>-FC<n>``; both are stable, so scenarios and tests can name them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from .geography import CITIES, CITY_BY_CODE, City, distance_km, offset_km


@dataclass(frozen=True)
class Node:
    """A place that scans parcels: a warehouse or a hub."""

    id: str
    city: City
    lat: float
    lon: float

    @property
    def province(self) -> str:
        return self.city.province


#: Fulfilment centres: (city, north km, east km from the centre). Real FCs sit in the
#: suburbs near ring roads and airports; the offsets put them there.
_WAREHOUSES: tuple[tuple[str, float, float], ...] = (
    ("HZ", -12.0, 14.0),  # Xiaoshan
    ("SH", 14.0, -22.0),  # Jiading
    ("GZ", 6.0, 24.0),  # Huangpu
    ("SZ", 12.0, -4.0),  # Longhua
    ("BJ", -24.0, 4.0),  # Daxing
    ("CD", -18.0, -6.0),  # Shuangliu
    ("WH", -16.0, -20.0),  # Hannan
    ("XA", 18.0, -10.0),  # Xianyang side
    ("ZZ", -25.0, 12.0),  # airport zone
    ("SY", 10.0, -16.0),
    ("YW", 4.0, 6.0),
    ("TJ", -10.0, 18.0),
)

#: Hubs per city: the big parcel cities run several sorting centres.
_HUB_COUNT: dict[str, int] = {"BJ": 3, "SH": 3, "GZ": 3, "SZ": 2, "HZ": 3, "WH": 2, "CD": 2, "ZZ": 2}

#: Cities whose hubs serve as national transit gateways on long hauls.
_GATEWAY_CITIES: tuple[str, ...] = ("WH", "ZZ", "XA", "CS", "NJ", "JN", "SY", "CD", "HF", "NC")

#: Above this distance a route goes through a gateway hub, if one lies near the way.
GATEWAY_MIN_KM = 900.0
#: A gateway may lengthen the trip by at most this factor.
GATEWAY_MAX_DETOUR = 1.2


def _suburb(city: City, key: str, near_km: float, far_km: float) -> tuple[float, float]:
    rng = random.Random(f"node:{key}")  # stable per node id, not per simulation seed
    north = rng.uniform(near_km, far_km) * rng.choice((-1.0, 1.0))
    east = rng.uniform(near_km, far_km) * rng.choice((-1.0, 1.0))
    lat, lon = offset_km(city.lat, city.lon, north, east)
    return round(lat, 5), round(lon, 5)


def _build_warehouses() -> tuple[Node, ...]:
    out = []
    counts: dict[str, int] = {}
    for code, north, east in _WAREHOUSES:
        city = CITY_BY_CODE[code]
        counts[code] = counts.get(code, 0) + 1
        lat, lon = offset_km(city.lat, city.lon, north, east)
        out.append(Node(f"{code}-FC{counts[code]}", city, round(lat, 5), round(lon, 5)))
    return tuple(out)


def _build_hubs() -> tuple[Node, ...]:
    out = []
    for city in CITIES:
        for n in range(1, _HUB_COUNT.get(city.code, 1) + 1):
            hub_id = f"{city.code}-{n}"
            lat, lon = _suburb(city, hub_id, 8.0, 22.0)
            out.append(Node(hub_id, city, lat, lon))
    return tuple(out)


WAREHOUSES: tuple[Node, ...] = _build_warehouses()
HUBS: tuple[Node, ...] = _build_hubs()
NODE_BY_ID: dict[str, Node] = {n.id: n for n in WAREHOUSES + HUBS}
_HUBS_BY_CITY: dict[str, tuple[Node, ...]] = {c.code: tuple(h for h in HUBS if h.city.code == c.code) for c in CITIES}


def node_distance_km(a: Node | City, b: Node | City) -> float:
    return distance_km(a.lat, a.lon, b.lat, b.lon)


def city_hub(city: City, carrier_index: int) -> Node:
    """The hub a carrier uses in a city (carriers spread over a city's hubs)."""
    hubs = _HUBS_BY_CITY[city.code]
    return hubs[carrier_index % len(hubs)]


@cache
def warehouses_by_distance(city_code: str) -> tuple[Node, ...]:
    """Warehouses, nearest to the city first (regional fulfilment picks the nearest)."""
    city = CITY_BY_CODE[city_code]
    return tuple(sorted(WAREHOUSES, key=lambda w: node_distance_km(w, city)))


@cache
def plan_hubs(warehouse_id: str, dest_city_code: str, carrier_index: int) -> tuple[Node, ...]:
    """The 1 to 3 hubs a parcel passes from a warehouse to a destination city."""
    warehouse = NODE_BY_ID[warehouse_id]
    dest = CITY_BY_CODE[dest_city_code]
    first = city_hub(warehouse.city, carrier_index)
    last = city_hub(dest, carrier_index)
    if first.id == last.id:
        return (first,)
    direct = node_distance_km(first, last)
    if direct < GATEWAY_MIN_KM:
        return (first, last)
    best: tuple[float, Node] | None = None
    for code in _GATEWAY_CITIES:
        if code in (warehouse.city.code, dest.code):
            continue
        gate = city_hub(CITY_BY_CODE[code], carrier_index)
        via = node_distance_km(first, gate) + node_distance_km(gate, last)
        if via <= direct * GATEWAY_MAX_DETOUR and (best is None or via < best[0]):
            best = (via, gate)
    return (first, best[1], last) if best else (first, last)
