"""Stages a carrier skipped reach the customer's timeline as "not scanned": the worker's
snapshot of a real state-machine order, read by the gateway's parser and projection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from dashboard.gateway.order_snapshot import OrderSnapshot
from dashboard.gateway.projection import customer_view
from dashboard.tracking.language import Lang
from dashboard.tracking.messages import CATALOGUES
from dashboard.tracking.milestones import Milestone, not_scanned_milestones
from stream.contract import OrderEvent, Status
from stream.core.lifecycle import apply_event
from stream.core.order_state import new_order
from stream.core.rollup import order_snapshot

T0 = datetime(2017, 10, 2, 13, tzinfo=UTC)


def test_steps_passed_without_their_scans_are_named_in_ladder_order() -> None:
    reached = [Status.PAID, Status.OUTBOUND_SCAN, Status.DELIVERED]
    skipped = [Status.PICKED, Status.PACKED, Status.LINEHAUL, Status.OUT_FOR_DELIVERY]
    assert not_scanned_milestones(reached, skipped) == [
        Milestone.PROCESSING,
        Milestone.IN_TRANSIT,
        Milestone.OUT_FOR_DELIVERY,
    ]
    # a step with one of its statuses scanned is not "not scanned" (packed scanned, picked not)
    assert not_scanned_milestones([Status.PAID, Status.PACKED], [Status.PICKED]) == []
    assert (CATALOGUES[Lang.EN]["not_scanned"], CATALOGUES[Lang.ZH_CN]["not_scanned"]) == ("Not scanned", "未扫描")


def test_a_delivery_without_last_mile_scans_shows_them_as_not_scanned_to_the_customer() -> None:
    order = new_order("o-1", 0)
    for n, (status, hours) in enumerate([(Status.PAID, 0), (Status.OUTBOUND_SCAN, 30), (Status.DELIVERED, 200)]):
        event = OrderEvent(
            event_id=f"e{n}",
            order_id="o-1",
            sku="o-1",
            status=status,
            source="olist",
            event_time=T0 + timedelta(hours=hours),
        )
        order, _ = apply_event(order, event)
    raw = orjson.dumps(order_snapshot(order))  # what the worker publishes on order-updates
    view = customer_view(OrderSnapshot.model_validate_json(raw))
    sku = view["skus"]["o-1"]
    assert sku["status"] == "delivered"
    assert sku["not_scanned"] == ["processing", "in_transit", "out_for_delivery"]
    assert [step["status"] for step in sku["timeline"]] == ["paid", "outbound_scan", "delivered"]
