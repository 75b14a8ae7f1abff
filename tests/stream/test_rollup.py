"""Order rollup and the order-updates snapshot (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from dashboard.gateway.order_snapshot import OrderSnapshot
from stream.contract import OrderEvent, Status
from stream.core.lifecycle import apply_event
from stream.core.order_state import OrderState, new_order
from stream.core.rollup import SNAPSHOT_TIMELINE, order_snapshot, rollup, summary

S = Status
T0 = datetime(2026, 11, 11, 8, tzinfo=UTC)


def build(*lines: tuple[str, list[Status], int]) -> OrderState:
    order = new_order("o-9", 2)
    n = 0
    for sku, statuses, qty in lines:
        for minute, status in enumerate(statuses):
            n += 1
            order, _ = apply_event(
                order,
                OrderEvent(
                    event_id=f"e{n}",
                    order_id="o-9",
                    sku=sku,
                    qty=qty,
                    status=status,
                    source="tms",
                    event_time=T0 + timedelta(minutes=minute),
                    lat=31.2,
                    lon=121.4,
                    promised_by=T0 + timedelta(days=1 + len(sku)),
                ),
            )
    return order


DELIVERY = [S.PAID, S.PICKED, S.PACKED, S.OUTBOUND_SCAN, S.LINEHAUL, S.HUB_ARRIVAL, S.OUT_FOR_DELIVERY]


def test_two_of_three_items_out_for_delivery_one_backordered() -> None:
    order = build(("a", DELIVERY, 1), ("b", DELIVERY, 1), ("c", [S.PAID, S.BACKORDERED], 1))
    r = rollup(order)
    assert r.lines == {"out_for_delivery": 2, "backordered": 1}
    assert r.status is S.BACKORDERED  # the slowest line
    assert r.partial and not r.closed and not r.exception
    assert r.progress == round((6 / 7 * 2 + 1 / 7) / 3, 4)
    assert summary(r) == "2 of 3 items out for delivery, 1 backordered"
    assert summary(r, "zh-CN") == "3件商品中2件派送中，1件缺货待补"


def test_units_count_quantities_and_cancelled_lines_do_not_hold_the_order_back() -> None:
    order = build(("a", DELIVERY + [S.DELIVERED], 2), ("bb", [S.PAID, S.CANCELLED], 1))
    r = rollup(order)
    assert r.units == {"delivered": 2, "cancelled": 1} and r.unit_count == 3
    assert r.status is S.DELIVERED and r.progress == 1.0 and r.closed
    assert r.promised_by_ns is not None  # only the active line's promise counts


def test_all_cancelled_and_exception_flags() -> None:
    assert rollup(build(("a", [S.PAID, S.CANCELLED], 1))).status is S.CANCELLED
    r = rollup(build(("a", DELIVERY[:5] + [S.EXCEPTION], 1), ("b", DELIVERY[:5], 1)))
    assert r.exception and r.status is S.EXCEPTION  # held at linehaul's rank, the problem shown
    assert summary(rollup(build(("a", DELIVERY, 3)))) == "all 3 items out for delivery"


def test_snapshot_is_what_the_gateway_reads() -> None:
    order = build(("a", DELIVERY, 1), ("b", [S.PAID, S.BACKORDERED], 2))
    raw = orjson.dumps(order_snapshot(order))
    parsed = OrderSnapshot.model_validate(orjson.loads(raw))
    assert parsed.order_id == "o-9" and parsed.seq == order.seq
    assert parsed.rollup_status is S.BACKORDERED
    assert parsed.skus["a"].known_status is S.OUT_FOR_DELIVERY and parsed.skus["b"].qty == 2
    assert parsed.skus["a"].position is not None
    assert [e.status for e in parsed.skus["a"].timeline] == [s.value for s in DELIVERY]
    assert parsed.rollup_time("promised_by") is not None


def test_snapshot_timeline_is_bounded_and_memoised_parts_are_reused() -> None:
    statuses = [S.PAID, S.PACKED, S.LINEHAUL] + [S.HUB_ARRIVAL, S.LINEHAUL] * 12
    order = build(("a", statuses, 1), ("b", [S.PAID], 1))
    first = orjson.loads(orjson.dumps(order_snapshot(order)))
    assert len(first["skus"]["a"]["timeline"]) == SNAPSHOT_TIMELINE
    assert first["skus"]["a"]["timeline"][-1]["status"] == "linehaul"
    # Another line moves: the unchanged line's part is the memoised one, output identical.
    moved, _ = apply_event(
        order,
        OrderEvent(
            event_id="z", order_id="o-9", sku="b", status=S.PICKED, event_time=T0 + timedelta(hours=1), source="wms"
        ),
    )
    assert moved.skus["a"] is order.skus["a"]
    second = orjson.loads(orjson.dumps(order_snapshot(moved)))
    assert second["skus"]["a"] == first["skus"]["a"] and second["skus"]["b"]["status"] == "picked"
