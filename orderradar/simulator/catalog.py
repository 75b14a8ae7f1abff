"""The commercial vocabulary: carriers, sales channels and the SKU catalogue.

Shares and speeds are rough public-market shapes (the "Tongda" carriers dominate
marketplace volume, SF and JD Logistics are fast and carry cold chain, JD orders mostly
ship with JD), chosen so the flow looks plausible on a dashboard, not to be exact.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cache

from stream.contract import SkuClass

from .randomness import Weighted


@dataclass(frozen=True)
class Carrier:
    id: str
    name: str
    #: Multiplies linehaul, dwell and delivery durations (below 1 is faster).
    speed_factor: float
    #: Share of long legs (over ``AIR_MIN_KM``) flown rather than trucked.
    air_share: float
    cold_chain: bool
    #: Chance that one delivery attempt fails (nobody home, wrong address).
    failure_rate: float


AIR_MIN_KM = 1000.0

CARRIERS: tuple[Carrier, ...] = (
    Carrier("SF", "SF Express", 0.75, 0.6, True, 0.02),
    Carrier("JD", "JD Logistics", 0.8, 0.3, True, 0.02),
    Carrier("ZTO", "ZTO Express", 1.0, 0.0, False, 0.03),
    Carrier("YTO", "YTO Express", 1.0, 0.05, False, 0.03),
    Carrier("STO", "STO Express", 1.05, 0.0, False, 0.035),
    Carrier("YUNDA", "Yunda Express", 1.05, 0.0, False, 0.035),
    Carrier("EMS", "China Post EMS", 1.15, 0.2, False, 0.025),
    Carrier("CAINIAO", "Cainiao", 0.95, 0.0, False, 0.03),
)
CARRIER_BY_ID: dict[str, Carrier] = {c.id: c for c in CARRIERS}
CARRIER_INDEX: dict[str, int] = {c.id: i for i, c in enumerate(CARRIERS)}


@dataclass(frozen=True)
class Channel:
    id: str
    #: Order-id prefix, so an id tells where the order came from.
    prefix: str
    share: float
    #: Promise from payment to delivery (rounded up to the end of that local day).
    promise_hours: float
    #: JD-style "211" promise when the order ships from its own region.
    promise_hours_local: float
    vip_share: float
    carrier_weights: tuple[tuple[str, float], ...]


CHANNELS: tuple[Channel, ...] = (
    Channel(
        "tmall",
        "TM",
        0.34,
        60,
        36,
        0.08,
        (("ZTO", 25), ("YTO", 20), ("CAINIAO", 15), ("STO", 12), ("YUNDA", 13), ("SF", 10), ("EMS", 5)),
    ),
    Channel("jd", "JD", 0.26, 40, 20, 0.10, (("JD", 85), ("SF", 10), ("EMS", 5))),
    Channel(
        "douyin",
        "DY",
        0.22,
        72,
        48,
        0.02,
        (("ZTO", 30), ("YTO", 25), ("YUNDA", 15), ("STO", 15), ("SF", 10), ("JD", 5)),
    ),
    Channel("miniprogram", "MP", 0.10, 60, 36, 0.05, (("SF", 40), ("ZTO", 20), ("YTO", 15), ("JD", 15), ("EMS", 10))),
    Channel("offline_store", "ST", 0.08, 40, 24, 0.04, (("SF", 50), ("JD", 20), ("EMS", 30))),
)
CHANNEL_BY_ID: dict[str, Channel] = {c.id: c for c in CHANNELS}


@dataclass(frozen=True)
class Sku:
    id: str
    sku_class: SkuClass
    price: float


CATALOG_SIZE = 5000
#: Zipf exponent of SKU popularity: a few hits, a long tail.
POPULARITY_EXPONENT = 1.05

_CLASS_WEIGHTS = (
    (SkuClass.STANDARD, 0.84),
    (SkuClass.BULKY, 0.08),
    (SkuClass.COLD_CHAIN, 0.05),
    (SkuClass.HAZMAT, 0.03),
)
_PRICE_FACTOR = {SkuClass.STANDARD: 1.0, SkuClass.BULKY: 4.0, SkuClass.COLD_CHAIN: 1.5, SkuClass.HAZMAT: 0.8}


@cache
def default_catalog() -> Weighted[Sku]:
    """The same catalogue for every seed: SKU ids mean the same thing across runs."""
    rng = random.Random("catalog:v1")
    classes = [c for c, _ in _CLASS_WEIGHTS]
    weights = [w for _, w in _CLASS_WEIGHTS]
    skus = []
    for n in range(1, CATALOG_SIZE + 1):
        sku_class = rng.choices(classes, weights)[0]
        price = math.exp(rng.gauss(math.log(79.0), 0.9)) * _PRICE_FACTOR[sku_class]
        skus.append(Sku(f"SKU{n:05d}", sku_class, round(min(price, 50_000.0), 2)))
    popularity = [1.0 / n**POPULARITY_EXPONENT for n in range(1, CATALOG_SIZE + 1)]
    return Weighted(zip(skus, popularity, strict=True))
