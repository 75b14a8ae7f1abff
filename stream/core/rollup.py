"""An order seen as a whole, from its SKU lines (pure), and the snapshot published for it.

:func:`rollup` answers "where is my order": counts of lines and units per status, the
overall status (the least advanced active line: an order is as far as its slowest item),
a progress fraction and a sentence such as "2 of 3 items out for delivery, 1 backordered"
(en and zh-CN). :func:`order_snapshot` is the JSON-ready value of an ``order-updates``
record: the rollup plus each SKU's status, stage times, last position and newest timeline
entries, which is everything the web tier needs to serve a snapshot without a database.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from stream.contract import CLOSED, STAGE_RANK, Status
from stream.core.order_state import OrderState, SkuState, ns_datetime, state_record
from stream.core.timeline_pack import TimelineEntry

#: The rank at which a line counts as fully progressed (delivered; returns are beyond it).
DONE_RANK = STAGE_RANK[Status.DELIVERED]

#: Timeline entries per SKU in a snapshot (the newest ones); the state keeps more.
SNAPSHOT_TIMELINE = 16

LANGUAGES = ("en", "zh-CN")

STATUS_LABELS: Mapping[str, Mapping[Status, str]] = {
    "en": {
        Status.PAID: "paid",
        Status.BACKORDERED: "backordered",
        Status.PICKED: "picked",
        Status.PACKED: "packed",
        Status.OUTBOUND_SCAN: "shipped from the warehouse",
        Status.LINEHAUL: "in transit",
        Status.HUB_ARRIVAL: "at a hub",
        Status.OUT_FOR_DELIVERY: "out for delivery",
        Status.DELIVERY_FAILED: "delivery attempt failed",
        Status.DELIVERED: "delivered",
        Status.EXCEPTION: "held by an exception",
        Status.RETURN_REQUESTED: "return requested",
        Status.RETURNED: "returned",
        Status.CANCELLED: "cancelled",
    },
    "zh-CN": {
        Status.PAID: "已付款",
        Status.BACKORDERED: "缺货待补",
        Status.PICKED: "已拣货",
        Status.PACKED: "已打包",
        Status.OUTBOUND_SCAN: "已出库",
        Status.LINEHAUL: "运输中",
        Status.HUB_ARRIVAL: "已到达中转站",
        Status.OUT_FOR_DELIVERY: "派送中",
        Status.DELIVERY_FAILED: "派送失败",
        Status.DELIVERED: "已签收",
        Status.EXCEPTION: "异常处理中",
        Status.RETURN_REQUESTED: "已申请退货",
        Status.RETURNED: "已退货",
        Status.CANCELLED: "已取消",
    },
}


_V: dict[Status, str] = {s: s.value for s in Status}
_BY_VALUE: dict[str, Status] = {s.value: s for s in Status}


@state_record
class OrderRollup:
    order_id: str
    #: Overall status: that of the least advanced active (not cancelled) line; ``cancelled``
    #: when every line is cancelled.
    status: Status
    #: SKU lines per status.
    lines: Mapping[str, int]
    #: Units (sum of ``qty``) per status.
    units: Mapping[str, int]
    sku_count: int
    unit_count: int
    #: 0..1: mean over active lines of their effective rank relative to ``delivered``.
    progress: float
    #: Lines are at different statuses.
    partial: bool
    #: Some line is held by an ``exception``.
    exception: bool
    #: Every line is delivered, returned or cancelled.
    closed: bool
    #: Latest promised delivery time over active lines (ns), if any was given.
    promised_by_ns: int | None


def rollup(order: OrderState) -> OrderRollup:
    lines: dict[str, int] = {}
    units: dict[str, int] = {}
    slowest: tuple[int, bool] | None = None
    status = Status.CANCELLED
    progress_sum = 0.0
    active = 0
    exception = False
    closed = True
    promised: int | None = None
    for sku in order.skus.values():
        current = sku.status
        value = _V[current]
        lines[value] = lines.get(value, 0) + 1
        units[value] = units.get(value, 0) + sku.facts.qty
        if current is Status.EXCEPTION:
            exception = True
        if current not in CLOSED:
            closed = False
        if current is Status.CANCELLED:
            continue
        active += 1
        rank = sku.effective_rank
        progress_sum += min(max(rank, 0), DONE_RANK) / DONE_RANK
        key = (rank, current is not Status.EXCEPTION)
        if slowest is None or key < slowest:
            slowest, status = key, current
        p = sku.facts.promised_by_ns
        if p is not None and (promised is None or p > promised):
            promised = p
    return OrderRollup(
        order_id=order.order_id,
        status=status,
        lines=lines,
        units=units,
        sku_count=len(order.skus),
        unit_count=sum(units.values()),
        progress=round(progress_sum / active, 4) if active else 0.0,
        partial=len(lines) > 1,
        exception=exception,
        closed=closed and bool(order.skus),
        promised_by_ns=promised,
    )


def summary(r: OrderRollup, language: str = "en") -> str:
    """One sentence: "2 of 3 items out for delivery, 1 backordered" (units, largest group first)."""
    return _summary(tuple(r.units.items()), r.unit_count, language)


@functools.lru_cache(maxsize=16_384)
def _summary(units: tuple[tuple[str, int], ...], unit_count: int, language: str) -> str:
    # Memoised: orders repeat a small set of (status, units) combinations.
    labels = STATUS_LABELS[language]
    groups = sorted(units, key=lambda kv: (-kv[1], -STAGE_RANK[_BY_VALUE[kv[0]]]))
    parts: list[str] = []
    for index, (status, count) in enumerate(groups):
        label = labels[_BY_VALUE[status]]
        if language == "zh-CN":
            parts.append(
                f"{unit_count}件商品中{count}件{label}" if index == 0 and len(groups) > 1 else f"{count}件{label}"
            )
        elif index == 0:
            noun = "item" if unit_count == 1 else "items"
            parts.append(
                f"{count} of {unit_count} {noun} {label}"
                if len(groups) > 1
                else f"{'all ' if count > 1 else ''}{count} {noun} {label}"
            )
        else:
            parts.append(f"{count} {label}")
    return ("，" if language == "zh-CN" else ", ").join(parts)


@functools.lru_cache(maxsize=262_144)
def _iso_of(ns: int) -> str:
    return ns_datetime(ns).isoformat()


def _iso(ns: int | None) -> str | None:
    """ISO 8601 (UTC) of an event time; memoised, as snapshots repeat the same times."""
    return _iso_of(ns) if ns is not None else None


def _entry_json(e: TimelineEntry) -> dict[str, Any]:
    # Not memoised on the entry: a kept orjson.dumps result pins a 4 KiB buffer (issue #20).
    flags = []
    if e.late:
        flags.append("late")
    if e.illegal is not None:
        flags.append("illegal")
    out: dict[str, Any] = {
        "event_id": e.event_id,
        "status": _V[e.status],
        "event_time": _iso(e.time_ns),
        "source": e.source,
        "flags": flags,
    }
    if e.node is not None:
        out["node"] = e.node
    if e.illegal is not None:
        out["reason"] = e.illegal
    if e.skipped:
        out["not_scanned"] = [_V[s] for s in e.skipped]
    return out


#: The facts a snapshot carries as they are, when known.
_NAMED_FACTS = ("region", "warehouse", "carrier", "channel", "node", "sku_class")


def sku_snapshot(s: SkuState) -> dict[str, Any]:
    """A SKU's part of the snapshot (not memoised on the state: see :func:`_entry_json`)."""
    f = s.facts
    out: dict[str, Any] = {
        "status": _V[s.status],
        "rank": s.rank,
        "qty": f.qty,
        "status_time": _iso(s.status_time_ns),
        "stage_times": {k: _iso_of(v) for k, v in s.stage_times.items()},
        "timeline": [_entry_json(e) for e in s.timeline[-SNAPSHOT_TIMELINE:]],
    }
    if s.interrupted is not None:
        out["interrupted"] = _V[s.interrupted]
    if s.position is not None:
        out["position"] = {"lat": s.position.lat, "lon": s.position.lon, "time": _iso(s.position.time_ns)}
    for name in _NAMED_FACTS:
        value = getattr(f, name)
        if value is not None:
            out[name] = value
    if f.promised_by_ns is not None:
        out["promised_by"] = _iso(f.promised_by_ns)
    if f.dest_lat is not None and f.dest_lon is not None:
        out["destination"] = {"lat": f.dest_lat, "lon": f.dest_lon}
    if s.pinned:
        out["held"] = True
    not_scanned = s.not_scanned
    if not_scanned:
        out["not_scanned"] = [_V[n] for n in not_scanned]
    return out


def rollup_json(r: OrderRollup) -> dict[str, Any]:
    return {
        "status": _V[r.status],
        "lines": r.lines,
        "units": r.units,
        "sku_count": r.sku_count,
        "unit_count": r.unit_count,
        "progress": r.progress,
        "partial": r.partial,
        "exception": r.exception,
        "closed": r.closed,
        "promised_by": _iso(r.promised_by_ns),
        "summary": {language: summary(r, language) for language in LANGUAGES},
    }


def order_snapshot(order: OrderState) -> dict[str, Any]:
    """The ``order-updates`` value for an order (see ``dashboard/gateway/order_snapshot.py``);
    pipeline stages' per-order state, if any, under ``extensions`` (by stage name)."""
    out = {
        "order_id": order.order_id,
        "seq": order.seq,
        "updated_at": _iso(order.last_event_ns),
        "rollup": rollup_json(rollup(order)),
        "skus": {sku: sku_snapshot(s) for sku, s in order.skus.items()},
    }
    if order.extensions:
        out["extensions"] = order.extensions
    return out
