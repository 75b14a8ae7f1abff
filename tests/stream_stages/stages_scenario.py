"""A small hand-built parcel network with one hub outage, and SLA rules scaled to minutes."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from aiokafka import AIOKafkaProducer

from config.settings import Settings
from stream.contract import OrderEvent, Status
from stream.topics import ORDER_EVENTS

HUBS = {
    "HUB-A": (30.75, 120.76),
    "HUB-B": (30.85, 121.05),
    "HUB-C": (30.55, 120.45),
    "HUB-D": (31.00, 121.25),
    "HUB-E": (30.45, 120.95),
}
WAREHOUSES = {"WH-HZ": (30.27, 120.15), "WH-SH": (31.23, 121.47)}
CARRIERS = ("SF", "ZTO")
REGIONS = ("Zhejiang", "Jiangsu", "Shanghai")
DOWN_HUB = "HUB-A"


@dataclass(frozen=True)
class Sent:
    event: OrderEvent
    received: datetime

    @property
    def key(self) -> bytes:
        return self.event.order_id.encode()

    @property
    def value(self) -> bytes:
        return self.event.model_dump_json(exclude_none=True).encode()


async def produce_sent(settings: Settings, sent: Iterable[Sent]) -> None:
    """Produce records to ``order-events``, each stamped with the time it was received."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(
                settings.topic(ORDER_EVENTS), s.value, key=s.key, timestamp_ms=int(s.received.timestamp() * 1000)
            )
            for s in sent
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def fast_rules(path: Path) -> Path:
    """config/sla.yaml with transit stalls after 40 min and incident windows in minutes."""
    rules = yaml.safe_load(Path("config/sla.yaml").read_text())
    rules["stages"]["in_transit"]["within"] = "40m"
    rules["overrides"] = [o for o in rules.get("overrides", []) if o.get("stage") != "in_transit"]
    inc = rules["incidents"]
    inc.update({"eval_every": "1m", "window": "1h", "baseline": "3h", "resolve_after": "10m"})
    path.write_text(yaml.safe_dump(rules, allow_unicode=True))
    return path


def outage_traffic(start: datetime, minutes: int, outage_after: int) -> list[Sent]:
    """Two orders a minute through a round-robin hub; from ``outage_after`` minutes on,
    ``HUB-A`` scans arrivals but sends nothing further (its parcels stall)."""
    out: list[Sent] = []
    hubs = list(HUBS)
    for i in range(2 * minutes):
        order_id = f"O{i:05d}"
        h = zlib.crc32(order_id.encode())
        hub, wh = hubs[i % len(hubs)], list(WAREHOUSES)[h % 2]
        common = {
            "order_id": order_id,
            "sku": "SKU1",
            "source": "test",
            "warehouse": wh,
            "carrier": CARRIERS[(h >> 3) % 2],
            "region": REGIONS[(h >> 5) % 3],
            "channel": "tmall",
        }
        t0 = start + timedelta(seconds=30 * i)
        # legs at truck speed (the GPS check stays quiet): the hub is at most ~100 km away
        steps = [
            (Status.PAID, 0, None, None),
            (Status.PACKED, 1, wh, None),
            (Status.OUTBOUND_SCAN, 2, wh, WAREHOUSES[wh]),
            (Status.LINEHAUL, 4, wh, WAREHOUSES[wh]),
            (Status.HUB_ARRIVAL, 30, hub, HUBS[hub]),
        ]
        if not (hub == DOWN_HUB and i >= 2 * outage_after):
            steps += [(Status.OUT_FOR_DELIVERY, 34, hub, HUBS[hub]), (Status.DELIVERED, 38, None, None)]
        for n, (status, dt, node, pos) in enumerate(steps):
            at = t0 + timedelta(minutes=dt)
            if at > start + timedelta(minutes=minutes):
                break
            extra: dict[str, object] = {"node": node} if node else {}
            if pos:
                extra.update(lat=pos[0], lon=pos[1])
            event = OrderEvent(event_id=f"{order_id}-{n}", status=status, event_time=at, **common, **extra)
            out.append(Sent(event, at + timedelta(seconds=2)))
    out.sort(key=lambda s: s.received)
    return out
