"""An order's ETA window and delay state, as the ``eta`` extension of its snapshot.

The delays stage recomputes it on every scan of the order, on every delay transition (a
timer can make an order late without a scan) and, once a minute, when its window has passed::

    {"from": ISO, "to": ISO,          # the window the whole order arrives in (UTC, minutes)
     "basis": "lanes" | "promise",    # lane statistics (p50..p90), else the promise deadline
     "promise": ISO | null,           # the latest promise deadline of its open SKUs
     "state": "on_track" | "at_risk" | "late" | "stalled",
     "slipped": bool,                 # the window ends after the promise
     "tz_offset_min": int}            # the order's UTC offset (its events'), for the page

The order arrives when its last open SKU does, so the window is the latest SKU window.
A SKU without enough lane statistics falls back to its promise deadline. A window that has
passed (the order should have arrived) starts now, as wide as it was and at least an hour
wide. An order with no window at all (no statistics, no promise) or with every SKU closed has no extension.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stream.contract import CLOSED
from stream.core.delays_engine import DelaysEngine
from stream.core.order_state import OrderState
from stream.core.sku_delay import DelayState

#: Snapshot extension name.
ETA_EXTENSION = "eta"
#: Delay states a customer is told about (and notified of, by the customer-notices sink).
NOTICE_STATES = (DelayState.AT_RISK.value, DelayState.LATE.value)
#: Width of the window of an order that should have arrived already.
MIN_OVERDUE_WIDTH_S = 3600.0
_RANK = {DelayState.ON_TRACK: 0, DelayState.AT_RISK: 1, DelayState.STALLED: 2, DelayState.LATE: 3}


def _iso(instant: float) -> str:
    minute = int(instant // 60) * 60  # minutes: a window moving by seconds is no news
    return datetime.fromtimestamp(minute, UTC).isoformat().replace("+00:00", "Z")


def order_eta(engine: DelaysEngine, order: OrderState, now: datetime, tz_offset_min: int) -> dict[str, Any] | None:
    """The ``eta`` extension of ``order`` as of ``now`` (see the module doc)."""
    froms: list[float] = []
    tos: list[float] = []
    promises: list[float] = []
    basis = "lanes"
    state = DelayState.ON_TRACK
    for sku, sku_state in order.skus.items():
        if sku_state.status in CLOSED:
            continue
        view = engine.view(order.order_id, sku)
        if view is None:
            continue
        if view.promise_due is not None:
            promises.append(view.promise_due)
        if _RANK.get(view.state, 0) > _RANK[state]:
            state = view.state
        window = engine.eta_for(order.order_id, sku, now)
        if window is not None:
            froms.append(window[0].timestamp())
            tos.append(window[1].timestamp())
        elif view.promise_due is not None:
            basis = "promise"
            froms.append(view.promise_due)
            tos.append(view.promise_due)
    if not tos:
        return None
    promise = max(promises) if promises else None
    clock = now.timestamp()
    if promise is not None and promise <= clock:
        state = DelayState.LATE  # open past its promise, whatever the stage timers said
    start, end = max(froms), max(tos)
    if end <= clock:
        # It should have arrived already: the window starts now, as wide (at least an hour).
        start, end = clock, clock + max(end - start, MIN_OVERDUE_WIDTH_S)
    return {
        "from": _iso(start),
        "to": _iso(end),
        "basis": basis,
        "promise": _iso(promise) if promise is not None else None,
        "state": state.value,
        "slipped": promise is not None and end > promise,
        "tz_offset_min": tz_offset_min,
    }


__all__ = ["ETA_EXTENSION", "NOTICE_STATES", "order_eta"]
