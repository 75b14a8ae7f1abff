"""The customer page shows the steps a carrier skipped as "not scanned" (headless Chromium,
the real gateway process, and the worker's own snapshot of a state-machine order)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from stream.contract import OrderEvent, Status
from stream.core.lifecycle import apply_event
from stream.core.order_state import new_order
from stream.core.rollup import order_snapshot
from tracking.browser import PHONE, chromium, wait_for
from tracking.stack import SOURCE, Bus, WebServer
from tracking.test_tracking_browser import open_page, step_state, step_time, text

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def skipped_last_mile(order_id: str) -> dict[str, Any]:
    """Paid, handed to the carrier, delivered: no processing, transit or last-mile scans."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    order = new_order(order_id, 0)
    for n, (status, hours, source) in enumerate(
        [(Status.PAID, 0, SOURCE), (Status.OUTBOUND_SCAN, 20, "tms"), (Status.DELIVERED, 60, "tms")]
    ):
        event = OrderEvent(
            event_id=f"{order_id}-{n}",
            order_id=order_id,
            sku="sku-1",
            status=status,
            source=source,
            event_time=start + timedelta(hours=hours),
        )
        order, _ = apply_event(order, event)
    snapshot: dict[str, Any] = orjson.loads(orjson.dumps(order_snapshot(order)))
    return snapshot


def test_skipped_steps_read_not_scanned_on_the_timeline(web: WebServer, bus: Bus) -> None:
    order_id = "o-not-scanned-1"
    snapshot = skipped_last_mile(order_id)
    assert snapshot["skus"]["sku-1"]["not_scanned"] == ["picked", "packed", "linehaul", "out_for_delivery"]
    bus.order_update(order_id, 1, snapshot["skus"], rollup=snapshot["rollup"])
    token = web.issue_link(order_id)
    with chromium(PHONE, lang="en-US") as phone:
        open_page(phone, web, token)
        wait_for(phone, lambda d: text(d, "milestone") == "Delivered", 15, "headline")
        for milestone in ("processing", "in_transit", "out_for_delivery"):
            assert step_state(phone, milestone) == "done"
            assert step_time(phone, milestone) == "Not scanned"
        for milestone in ("ordered", "shipped", "delivered"):
            assert step_time(phone, milestone) not in ("", "Not scanned")
