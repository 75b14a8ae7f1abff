"""Seeded scenario traffic for the delays tests: a small Yangtze-delta parcel network.

Orders are paid at a steady rate, picked and packed in one of three warehouses, handed
to one of three carriers, sorted at one of four hubs and delivered from one of two
stations in the destination province. Leg times follow distance at truck speed, so the
GPS check sees nothing odd. Faults are injected on top of the normal flow:

* ``HubOutage``: a hub stops scanning; its scans are done in one go when it resumes;
* ``CarrierSlowdown``: a carrier's stations in one province hold parcels for hours;
* ``BadClock``: a scanner stamps its events hours ahead of the real time;
* ``background``: a share of random SKUs is held up somewhere, anywhere.

The output is the list of events with their receipt times, in receipt order, exactly
what a worker would consume from the topic.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stream.contract import OrderEvent, Status
from stream.core.delays_engine import DelaysEngine, DelaysResult

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday, no holiday
MIN = 60.0
HOUR = 3600.0

WAREHOUSES = {"WH-HZ": (30.27, 120.15), "WH-SH": (31.23, 121.47), "WH-HF": (31.82, 117.23)}
HUBS = {
    "HUB-JX": (30.75, 120.76),
    "HUB-WX": (31.49, 120.31),
    "HUB-NJ": (32.06, 118.79),
    "HUB-SX": (30.00, 120.58),
}
STATIONS = {
    "Zhejiang": {"ST-ZJ-NB": (29.87, 121.54), "ST-ZJ-HU": (30.89, 120.09)},
    "Jiangsu": {"ST-JS-SZ": (31.30, 120.58), "ST-JS-CZ": (31.81, 119.97)},
    "Shanghai": {"ST-SH-PD": (31.22, 121.54), "ST-SH-MH": (31.11, 121.38)},
    "Anhui": {"ST-AH-HF": (31.86, 117.28), "ST-AH-WH": (31.33, 118.43)},
}
CARRIERS = ("SF", "ZTO", "YTO")
CHANNELS = ("tmall", "jd", "douyin")
PROVINCES = tuple(STATIONS)


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def partition_of(order_id: str, partitions: int = 4) -> int:
    return zlib.crc32(order_id.encode()) % partitions


@dataclass(frozen=True)
class HubOutage:
    hub: str
    start: float  # seconds after T0
    end: float


@dataclass(frozen=True)
class CarrierSlowdown:
    carrier: str
    province: str
    start: float
    end: float
    extra: tuple[float, float] = (9 * HOUR, 14 * HOUR)


@dataclass(frozen=True)
class BadClock:
    device: str
    start: float
    skew: float  # seconds added to the event time


@dataclass
class Scenario:
    seed: int = 1
    orders: int = 1800
    order_span: float = 24 * HOUR
    background: float = 0.02
    late_uploads: float = 0.01  # share of records received 10-30 min late (beyond lateness)
    outages: list[HubOutage] = field(default_factory=list)
    slowdowns: list[CarrierSlowdown] = field(default_factory=list)
    bad_clocks: list[BadClock] = field(default_factory=list)


@dataclass(frozen=True)
class Delivery:
    """One record as consumed: receipt time, partition, event."""

    received: float
    partition: int
    event: OrderEvent


def _device(node: str, rng: random.Random) -> str:
    return f"PDA-{node}-{rng.randint(1, 2)}"


def generate(sc: Scenario) -> list[Delivery]:
    rng = random.Random(sc.seed)
    out: list[Delivery] = []
    for n in range(sc.orders):
        order_id = f"SO{sc.seed:02d}{n:06d}"
        paid_at = rng.uniform(0, sc.order_span)
        for line in range(1 if rng.random() < 0.75 else 2):
            out.extend(_sku_events(sc, rng, order_id, f"SKU-{line + 1}", paid_at))
    out.sort(key=lambda d: (d.received, d.event.event_id))
    return out


def _sku_events(sc: Scenario, rng: random.Random, order_id: str, sku: str, paid_at: float) -> Iterator[Delivery]:
    warehouse = rng.choice(list(WAREHOUSES))
    hub = rng.choice(list(HUBS))
    province = rng.choice(PROVINCES)
    station = rng.choice(list(STATIONS[province]))
    carrier = rng.choice(CARRIERS)
    channel = rng.choice(CHANNELS)
    w_pos, h_pos, s_pos = WAREHOUSES[warehouse], HUBS[hub], STATIONS[province][station]
    dest = (s_pos[0] + rng.uniform(-0.04, 0.04), s_pos[1] + rng.uniform(-0.04, 0.04))

    def travel(a: tuple[float, float], b: tuple[float, float]) -> float:
        return _km(a, b) / 60.0 * HOUR + rng.uniform(20, 50) * MIN  # 60 km/h plus loading

    # (status, gap before it, node, next_node, position, device)
    steps: list[tuple[Status, float, str | None, str | None, tuple[float, float] | None, str | None]] = [
        (Status.PAID, 0.0, None, None, None, None),
        (Status.PICKED, rng.uniform(20, 90) * MIN, warehouse, None, w_pos, _device(warehouse, rng)),
        (Status.PACKED, rng.uniform(10, 40) * MIN, warehouse, None, w_pos, _device(warehouse, rng)),
        (Status.OUTBOUND_SCAN, rng.uniform(10, 60) * MIN, warehouse, None, w_pos, _device(warehouse, rng)),
        (Status.LINEHAUL, rng.uniform(20, 120) * MIN, warehouse, hub, w_pos, _device(warehouse, rng)),
        (Status.HUB_ARRIVAL, travel(w_pos, h_pos), hub, None, h_pos, _device(hub, rng)),
        (Status.LINEHAUL, rng.uniform(30, 120) * MIN, hub, station, h_pos, _device(hub, rng)),
        (Status.HUB_ARRIVAL, travel(h_pos, s_pos), station, None, s_pos, _device(station, rng)),
        (Status.OUT_FOR_DELIVERY, rng.uniform(30, 120) * MIN, station, None, s_pos, _device(station, rng)),
        (Status.DELIVERED, 0.0, station, None, dest, f"PDA-{station}-C{rng.randint(1, 9)}"),
    ]
    # the last mile takes as long as the courier needs to get there
    last = steps[-1]
    steps[-1] = (last[0], max(_km(s_pos, dest) / 30.0 * HOUR, 20 * MIN) + rng.uniform(10, 90) * MIN, *last[2:])
    held_step = rng.randint(1, len(steps) - 1) if rng.random() < sc.background else -1
    t = paid_at
    promised = T0 + timedelta(seconds=paid_at + 72 * HOUR)
    for i, (status, gap, node, next_node, pos, device) in enumerate(steps):
        t += gap
        if i == held_step:
            t += rng.uniform(9, 16) * HOUR
        for slow in sc.slowdowns:
            if (
                status is Status.OUT_FOR_DELIVERY
                and carrier == slow.carrier
                and province == slow.province
                and slow.start <= t - gap < slow.end
            ):
                t += rng.uniform(*slow.extra)
        for outage in sc.outages:
            if (
                node == outage.hub
                and status in (Status.HUB_ARRIVAL, Status.LINEHAUL)
                and outage.start <= t < outage.end
            ):
                t = outage.end + rng.uniform(0, 30) * MIN  # the backlog is scanned on resumption
        event_time = t
        for clock in sc.bad_clocks:
            if device == clock.device and t >= clock.start:
                event_time = t + clock.skew
        lag = rng.uniform(5, 90)
        if rng.random() < sc.late_uploads:
            lag = rng.uniform(10, 30) * MIN  # a batch upload arriving late
        event = OrderEvent(
            event_id=f"{order_id}-{sku}-{i}",
            order_id=order_id,
            sku=sku,
            status=status,
            event_time=T0 + timedelta(seconds=event_time),
            source="oms" if status is Status.PAID else "pda",
            channel=channel,
            warehouse=warehouse,
            node=node,
            carrier=carrier if i >= 3 else None,
            device_id=device,
            region=province,
            lat=pos[0] if pos else None,
            lon=pos[1] if pos else None,
            promised_by=promised if status is Status.PAID else None,
            attributes={"next_node": next_node} if next_node else {},
        )
        yield Delivery(t + lag, partition_of(order_id), event)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_event(order_id: str, status: Status, seconds: float, **fields: Any) -> OrderEvent:
    """A hand-made event ``seconds`` after :data:`T0` (unit tests); ``sku`` defaults to SKU-1."""
    sku = fields.pop("sku", "SKU-1")
    return OrderEvent.model_validate(
        {
            "event_id": f"{order_id}-{sku}-{status.value}-{seconds:.0f}",
            "order_id": order_id,
            "sku": sku,
            "status": status,
            "event_time": T0 + timedelta(seconds=seconds),
            "source": "test",
            **fields,
        }
    )


@dataclass
class Run:
    """Everything an engine emitted while consuming a scenario."""

    transitions: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)

    def add(self, result: DelaysResult) -> None:
        self.transitions.extend(t.to_dict() for t in result.transitions)
        self.incidents.extend(e.to_record() | {"type": e.type} for e in result.incidents)
        self.findings.extend(f.to_dict() for f in result.findings)

    def incident_ids(self, kind: str | None = None) -> list[str]:
        ids = [str(r["incident_id"]) for r in self.incidents if kind is None or r["kind"] == kind]
        return list(dict.fromkeys(ids))


def consume(
    engine: DelaysEngine,
    deliveries: list[Delivery],
    *,
    chunk: int = 40,
    ticks: bool = True,
    until: float | None = None,
    run: Run | None = None,
) -> Run:
    """Feed deliveries like a worker: chunks in receipt order, one call per partition.

    ``ticks``: call ``tick(now)`` after every chunk and every 5 minutes after the last
    record until ``until`` (a live worker); without, finish with ``advance_watermark``.
    Both runs end with one tick a minute after the last record (the end of the log: its
    quiet sources follow the clock, as the worker's next tick would move them). Each record
    is received at its own receipt time.
    """
    run = run or Run()
    for i in range(0, len(deliveries), chunk):
        part = deliveries[i : i + chunk]
        now = at(part[-1].received)
        by_partition: dict[int, list[Delivery]] = {}
        for d in part:
            by_partition.setdefault(d.partition, []).append(d)
        for partition, found in by_partition.items():
            run.add(
                engine.process(
                    [d.event for d in found],
                    partition=partition,
                    now=now,
                    received_at=[at(d.received).timestamp() for d in found],
                )
            )
        if ticks:
            run.add(engine.tick(now))
    if until is not None:
        last = deliveries[-1].received if deliveries else 0.0
        # a minute after the last record (``idle_after``), the clock moves the quiet sources
        run.add(engine.tick(at(last + MIN)))
        if ticks:
            t = last
            while t < until:
                t += 5 * MIN
                run.add(engine.tick(at(t)))
        else:
            # a replay has no clock: close with the watermark the ticks would have reached
            t = last
            while t < until:
                t += 5 * MIN
                run.add(engine.advance_watermark(at(t - 5 * MIN)))
    return run
