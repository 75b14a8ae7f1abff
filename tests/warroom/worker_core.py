"""The worker's pure core run in-process over simulated events: what the Faust worker would
publish and write, computed by the same functions it uses.

``stream.lifecycle`` (SKU state machine), ``stream.rollup.order_snapshot`` (``order-updates``
values), ``stream.aggregates.PartitionAggregates`` (per-minute series and the per-partition
``warroom-updates`` summary) and ``stream.line_protocol.sku_event_line`` (``sku_events``).
Used when the worker subprocess is not available (``conftest.USE_WORKER``), and always for the
``delays`` gauge the war-room's delay-rate chart reads, which the worker does not write yet.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from config.settings import Settings
from orderradar.simulator.emission import Emission
from stream.aggregates import PartitionAggregates
from stream.contract import CLOSED, OrderEvent
from stream.lifecycle import OrderState, apply_event, datetime_ns, new_order
from stream.line_protocol import line, sku_event_line
from stream.rollup import order_snapshot
from warroom import traffic


@dataclass
class CoreOutput:
    snapshots: dict[str, dict[str, Any]]
    summaries: list[dict[str, Any]]
    lines: list[str]


def partition_of(order_id: str, partitions: int) -> int:
    return zlib.crc32(order_id.encode()) % partitions


def run(emissions: Sequence[Emission], partitions: int) -> CoreOutput:
    orders: dict[str, OrderState] = {}
    aggregates = {p: PartitionAggregates(p) for p in range(partitions)}
    lines: list[str] = []
    for emission in emissions:
        event = emission.event
        order = orders.get(event.order_id) or new_order(event.order_id, partition_of(event.order_id, partitions))
        order, change = apply_event(order, event)
        orders[event.order_id] = order
        if change is None:
            continue
        aggregates[order.partition].observe(change)
        # A running number stands for the record offset (unique per partition, like Kafka's).
        lines.append(sku_event_line(event, change, partition=order.partition, offset=len(lines)))
    for agg in aggregates.values():
        lines.extend(agg.pending_lines())
    summaries = [agg.snapshot() for agg in aggregates.values() if agg.watermark_ns]
    # The pipeline numbers each order's updates; one update each here.
    snapshots = {o: {**order_snapshot(s), "seq": 1} for o, s in orders.items()}
    return CoreOutput(snapshots, summaries, lines)


def delay_gauge_lines(events: Sequence[OrderEvent], now: datetime, minutes: int, partitions: int) -> list[str]:
    """``delays`` samples per minute: in-flight SKU lines by delay state and dimensions."""
    ordered = sorted(events, key=lambda e: e.event_time)
    out: list[str] = []
    latest: dict[tuple[str, str], OrderEvent] = {}
    index = 0
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes)
    for step in range(minutes + 1):
        moment = start + timedelta(minutes=step)
        while index < len(ordered) and ordered[index].event_time <= moment:
            event = ordered[index]
            latest[(event.order_id, event.sku)] = event
            index += 1
        counts: Counter[tuple[int, str, str | None, str | None, str | None]] = Counter()
        for event in latest.values():
            if event.status not in CLOSED:
                counts[(partition_of(event.order_id, partitions), traffic.state_at(event, moment),
                        event.region, event.carrier, event.warehouse)] += 1
        for (partition, state, region, carrier, warehouse), count in counts.items():
            tags = {"partition": str(partition), "state": state, "region": region, "carrier": carrier,
                    "warehouse": warehouse}
            out.append(line("delays", tags, {"count": count}, datetime_ns(moment)))
    return out


def write_lines(settings: Settings, lines: Sequence[str], chunk: int = 5000) -> None:
    with httpx.Client(base_url=settings.influx_url, timeout=60) as client:
        for start in range(0, len(lines), chunk):
            response = client.post("/write", params={"db": settings.influx_db, "precision": "ns"},
                                   content="\n".join(lines[start:start + chunk]).encode())
            assert response.status_code == 204, response.text
