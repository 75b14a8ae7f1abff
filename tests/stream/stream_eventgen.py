"""A small seeded generator of ``order-events`` records for the stream tests and the bench.

Orders of 1-3 SKU lines walk legal paths of the state machine (with backorders, failed
deliveries, exceptions and cancellations); the records come out in event-time order, then
a share is reordered (moved behind events up to a minute newer), re-sent (exact byte
copies a few records later) or replaced by invalid records (each with unique bytes, so a
test can find every one of them in the dead-letter topic).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from stream.contract import OrderEvent, Status
from stream.core.aggregates import PartitionAggregates
from stream.core.lifecycle import apply_event
from stream.core.order_state import OrderState, new_order

S = Status
START = datetime(2026, 6, 1, tzinfo=UTC)

REGIONS = ("310000", "330000", "440000", "110000", "510000", "320000")
WAREHOUSES = ("wh-sh-1", "wh-hz-1", "wh-gz-2", "wh-bj-1")
CARRIERS = ("sf", "zto", "yto", "jd")
CHANNELS = ("tmall", "jd", "douyin", "app")
HUBS = ("hub-sh", "hub-hz", "hub-wh", "hub-gz", "hub-cd")


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes
    #: "valid", "duplicate" (a byte copy of an earlier valid record) or "invalid"
    kind: str
    event: OrderEvent | None = None


def _path(rng: random.Random) -> list[tuple[Status, str | None]]:
    """Statuses and nodes of one SKU line, a legal walk."""
    steps: list[tuple[Status, str | None]] = [(S.PAID, None)]
    if rng.random() < 0.05:
        return steps + [(S.CANCELLED, None)]
    if rng.random() < 0.08:
        steps.append((S.BACKORDERED, None))
    warehouse = rng.choice(WAREHOUSES)
    steps += [(S.PICKED, warehouse), (S.PACKED, warehouse), (S.OUTBOUND_SCAN, warehouse)]
    for hub in rng.sample(HUBS, rng.randint(1, 3)):
        steps += [(S.LINEHAUL, None), (S.HUB_ARRIVAL, hub)]
    if rng.random() < 0.05:
        steps.append((S.EXCEPTION, steps[-1][1]))
    last_hub = steps[-1][1]
    steps.append((S.OUT_FOR_DELIVERY, last_hub))
    if rng.random() < 0.07:
        steps += [(S.DELIVERY_FAILED, None), (S.OUT_FOR_DELIVERY, last_hub)]
    if rng.random() < 0.9:
        steps.append((S.DELIVERED, None))
    return steps


def _valid_events(rng: random.Random, count: int) -> list[OrderEvent]:
    events: list[OrderEvent] = []
    order_no = 0
    while len(events) < count:
        order_no += 1
        order_id = f"o-{order_no:07d}"
        placed = START + timedelta(seconds=order_no * 7 + rng.random() * 5)
        region, channel, carrier = rng.choice(REGIONS), rng.choice(CHANNELS), rng.choice(CARRIERS)
        for number in rng.sample(range(1, 500), rng.choice((1, 1, 2, 3))):
            sku = f"sku-{number:04d}"
            at = placed  # every line of an order is paid at the same instant
            for index, (status, node) in enumerate(_path(rng)):
                if index:
                    at += timedelta(seconds=rng.randint(60, 1800))
                with_position = status in (S.HUB_ARRIVAL, S.OUT_FOR_DELIVERY, S.DELIVERED) and rng.random() < 0.7
                events.append(
                    OrderEvent(
                        event_id=f"{order_id}-{sku}-{index}",
                        order_id=order_id,
                        sku=sku,
                        qty=rng.randint(1, 3),
                        status=status,
                        event_time=at,
                        source=rng.choice(("oms", "wms", "tms")) if status is not S.DELIVERED else "courier-app",
                        channel=channel,
                        warehouse=None if status is S.PAID else node if node and node.startswith("wh") else None,
                        node=node,
                        carrier=carrier if index > 2 else None,
                        region=region,
                        lat=round(rng.uniform(22, 40), 5) if with_position else None,
                        lon=round(rng.uniform(103, 122), 5) if with_position else None,
                    )
                )
    events.sort(key=lambda e: (e.event_time, e.event_id))
    return events[:count]


def _invalid(rng: random.Random, n: int, template: OrderEvent) -> tuple[bytes | None, bytes]:
    """An invalid record; ``n`` makes its bytes unique."""
    good = orjson.loads(template.to_json())
    kind = n % 7
    if kind == 0:
        return f"o-bad-{n}".encode(), f"not json {n}".encode()
    if kind == 1:
        bad = dict(good, event_id=f"bad-{n}", status="teleported")
    elif kind == 2:
        bad = {k: v for k, v in good.items() if k != "source"} | {"event_id": f"bad-{n}"}
    elif kind == 3:
        bad = dict(good, event_id=f"bad-{n}", lat=91.5, lon=10.0)
    elif kind == 4:
        bad = dict(good, event_id=f"bad-{n}", surprise=True)
    elif kind == 5:
        bad = dict(good, event_id=f"bad-{n}", event_time="2999-01-01T00:00:00+00:00")
    else:
        # key mismatch: valid event, wrong record key
        return f"o-other-{n}".encode(), orjson.dumps(dict(good, event_id=f"bad-{n}"))
    return str(bad["order_id"]).encode(), orjson.dumps(bad)


def generate(
    seed: int, total: int, invalid: float = 0.01, duplicates: float = 0.05, reordered: float = 0.05
) -> list[Record]:
    """``total`` records: the given shares invalid and duplicate, the rest valid and unique."""
    rng = random.Random(seed)
    n_invalid = int(total * invalid)
    n_dup = int(total * duplicates)
    events = _valid_events(rng, total - n_invalid - n_dup)
    # reorder: move an event behind later ones that are at most a minute newer
    order = list(range(len(events)))
    for _ in range(int(len(events) * reordered)):
        i = rng.randrange(len(order) - 1)
        j = i
        limit = events[order[i]].event_time + timedelta(minutes=1)
        while j + 1 < len(order) and events[order[j + 1]].event_time <= limit and j - i < 20:
            j += 1
        if j > i:
            order[i : j + 1] = order[i + 1 : j + 1] + [order[i]]
    valid = [Record(e.order_id.encode(), e.to_json(), "valid", e) for e in (events[k] for k in order)]
    # Extra records are placed after a position of the valid sequence: (position, rank) keys.
    placed: list[tuple[float, Record]] = [(float(i), r) for i, r in enumerate(valid)]
    for n in range(n_dup):
        i = rng.randrange(len(valid))
        original = valid[i]
        placed.append(
            (
                i + rng.randint(1, 50) + (n + 1) / (n_dup + n_invalid + 2),
                Record(original.key, original.value, "duplicate", original.event),
            )
        )
    for n in range(n_invalid):
        i = rng.randrange(len(valid))
        template = valid[i].event
        assert template is not None
        key, value = _invalid(rng, n, template)
        placed.append((i - 0.5 + (n + 1) / (2 * (n_invalid + 2)), Record(key, value, "invalid")))
    placed.sort(key=lambda item: item[0])
    return [record for _, record in placed]


def valid_events(records: list[Record]) -> list[OrderEvent]:
    """The valid records' events in record order (duplicates included: the replay input)."""
    return [r.event for r in records if r.kind in ("valid", "duplicate") and r.event is not None]


def fold_partition(
    events: list[OrderEvent], partition: int, window: int
) -> tuple[PartitionAggregates, dict[str, OrderState]]:
    """``events`` through the order state machine and a partition's per-minute aggregates,
    in this order, as the pipeline applies them: (the aggregates, the order states)."""
    agg = PartitionAggregates(partition, window)
    orders: dict[str, OrderState] = {}
    for e in events:
        order, change = apply_event(orders.get(e.order_id) or new_order(e.order_id, partition), e)
        orders[e.order_id] = order
        if change is not None:
            agg.observe(change)
    return agg, orders
