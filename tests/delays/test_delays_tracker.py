"""Per-SKU delay states, timers and at-risk prediction, driven through DelaysEngine."""

from __future__ import annotations

import json
from datetime import timedelta

from delays_traffic import HOUR, MIN, T0, at, make_event

from stream.contract import Status
from stream.core.delays_engine import DelaysEngine
from stream.core.sku_delay import DelayState
from stream.core.sla import SlaRules

RULES = SlaRules.model_validate(
    {
        "stages": {
            "fulfilment": {"starts": ["paid"], "ends": "outbound_scan", "within": "6h"},
            "first_linehaul": {"starts": ["outbound_scan"], "ends": "linehaul", "within": "4h"},
            "in_transit": {
                "starts": ["linehaul", "hub_arrival"],
                "ends": "out_for_delivery",
                "within": "8h",
                "breach": "stalled",
                "restart_on_scan": True,
            },
            "last_mile": {"starts": ["out_for_delivery"], "ends": "delivered", "within": "4h"},
        },
        "overrides": [{"id": "cold", "stage": "fulfilment", "match": {"sku_class": "cold_chain"}, "within": "2h"}],
        "watermark": {"allowed_lateness": "5m"},
        "tracking": {"closed_retention": "1h"},
    }
)


def _states(engine: DelaysEngine, order: str = "O1") -> tuple[DelayState, str | None, float]:
    view = engine.view(order, "SKU-1")
    assert view is not None
    return view.state, view.rule, view.delay_minutes


def test_stage_deadline_goes_at_risk_then_late_and_recovers_on_the_next_scan() -> None:
    engine = DelaysEngine(RULES)
    engine.process([make_event("O1", Status.PAID, 0, warehouse="WH-1")])
    assert _states(engine)[0] is DelayState.ON_TRACK
    # no lane statistics yet: at risk after 80 % of the window (fallback_fraction)
    result = engine.advance_watermark(at(4.9 * HOUR))
    assert [t.state for t in result.transitions] == [DelayState.AT_RISK]
    assert _states(engine) == (DelayState.AT_RISK, "fulfilment", 0.0)
    result = engine.advance_watermark(at(6.5 * HOUR))
    assert [(t.previous, t.state, t.rule) for t in result.transitions] == [
        (DelayState.AT_RISK, DelayState.LATE, "fulfilment")
    ]
    assert result.transitions[0].delay_minutes == 30.0
    assert _states(engine) == (DelayState.LATE, "fulfilment", 30.0)
    engine.process([make_event("O1", Status.OUTBOUND_SCAN, 7 * HOUR, warehouse="WH-1", carrier="SF")])
    view = engine.view("O1", "SKU-1")
    assert view is not None and view.state is DelayState.ON_TRACK and view.stage == "first_linehaul"
    state = engine.tracker.get("O1|SKU-1")
    assert state is not None and state.breaches == 1  # the stage was completed late


def test_no_movement_in_transit_stalls_and_each_scan_restarts_the_timer() -> None:
    engine = DelaysEngine(RULES)
    engine.process([make_event("O1", Status.LINEHAUL, 0, node="HUB-A", attributes={"next_node": "HUB-B"})])
    engine.process([make_event("O1", Status.HUB_ARRIVAL, 5 * HOUR, node="HUB-B")])
    engine.advance_watermark(at(12 * HOUR))
    assert _states(engine)[0] is not DelayState.STALLED  # restarted at 5 h
    result = engine.advance_watermark(at(13.5 * HOUR))
    assert [t.state for t in result.transitions] == [DelayState.STALLED]
    assert _states(engine) == (DelayState.STALLED, "in_transit", 30.0)


def test_exception_scan_overrides_until_the_sku_moves_again() -> None:
    engine = DelaysEngine(RULES)
    engine.process([make_event("O1", Status.HUB_ARRIVAL, 0, node="HUB-A")])
    result = engine.process([make_event("O1", Status.EXCEPTION, 1 * HOUR, node="HUB-A")])
    assert [t.state for t in result.transitions] == [DelayState.EXCEPTION]
    assert _states(engine)[:2] == (DelayState.EXCEPTION, "exception")
    result = engine.process([make_event("O1", Status.LINEHAUL, 2 * HOUR, node="HUB-A")])
    assert [t.state for t in result.transitions] == [DelayState.ON_TRACK]


def test_promise_decides_the_closed_outcome() -> None:
    engine = DelaysEngine(RULES)
    promised = T0 + timedelta(hours=10)
    engine.process(
        [
            make_event("O1", Status.PAID, 0, promised_by=promised),
            make_event("O2", Status.PAID, 0, promised_by=promised),
        ]
    )
    engine.process(
        [make_event("O1", Status.OUT_FOR_DELIVERY, 9 * HOUR), make_event("O2", Status.OUT_FOR_DELIVERY, 9 * HOUR)]
    )
    result = engine.process([make_event("O1", Status.DELIVERED, 9.5 * HOUR)])
    (on_time,) = result.transitions
    assert on_time.closed and not on_time.promise_late and on_time.state is DelayState.ON_TRACK
    result = engine.advance_watermark(at(10.25 * HOUR))
    assert [(t.order_id, t.state, t.rule) for t in result.transitions] == [("O2", DelayState.LATE, "promise")]
    result = engine.process([make_event("O2", Status.DELIVERED, 11 * HOUR)])
    (late,) = result.transitions
    assert late.closed and late.promise_late and late.state is DelayState.LATE
    assert late.delay_minutes == 60.0 and late.rule == "promise"
    json.dumps(late.to_dict())  # ready for the topic


def test_late_and_regressing_events_do_not_move_the_sku_back() -> None:
    engine = DelaysEngine(RULES)
    engine.process([make_event("O1", Status.OUT_FOR_DELIVERY, 2 * HOUR)])
    engine.process([make_event("O1", Status.LINEHAUL, 1 * HOUR), make_event("O1", Status.PACKED, 3 * HOUR)])
    view = engine.view("O1", "SKU-1")
    assert view is not None and view.status == "out_for_delivery" and view.stage == "last_mile"
    # a legal step back (courier returns the parcel to the hub) is followed
    engine.process([make_event("O1", Status.HUB_ARRIVAL, 4 * HOUR)])
    view = engine.view("O1", "SKU-1")
    assert view is not None and view.status == "hub_arrival" and view.stage == "in_transit"


def test_most_specific_override_is_named_as_the_rule() -> None:
    engine = DelaysEngine(RULES)
    engine.process([make_event("O1", Status.PAID, 0, sku_class="cold_chain")])
    engine.advance_watermark(at(2.5 * HOUR))
    assert _states(engine) == (DelayState.LATE, "cold", 30.0)


def test_closed_skus_are_forgotten_after_retention_and_reported_for_deletion() -> None:
    engine = DelaysEngine(RULES)
    engine.process([make_event("O1", Status.OUT_FOR_DELIVERY, 0), make_event("O1", Status.DELIVERED, 1 * HOUR)])
    assert engine.take_dirty()["sku/O1|SKU-1"] is not None
    engine.process([make_event("O1", Status.DELIVERED, 1 * HOUR + 10)])  # a duplicate: ignored
    engine.advance_watermark(at(2.5 * HOUR))
    assert engine.view("O1", "SKU-1") is None
    assert engine.take_dirty()["sku/O1|SKU-1"] is None


def test_at_risk_from_lane_statistics_before_the_breach() -> None:
    engine = DelaysEngine(RULES)
    lane = {"warehouse": "WH-1", "carrier": "SF", "region": "Zhejiang"}
    # this lane's first linehaul scan comes 3.5 to 3.9 h after the outbound scan
    for i in range(40):
        order = f"T{i}"
        engine.process(
            [
                make_event(order, Status.OUTBOUND_SCAN, i * MIN, **lane),
                make_event(order, Status.LINEHAUL, i * MIN + 3.5 * HOUR + i * 36, **lane),
            ]
        )
    engine.process([make_event("O1", Status.OUTBOUND_SCAN, 5 * HOUR, **lane)])
    stage_due = 5 * HOUR + 4 * HOUR
    engine.advance_watermark(at(5 * HOUR + 1 * HOUR))
    assert _states(engine)[0] is DelayState.ON_TRACK  # most SKUs are still waiting then too
    result = engine.advance_watermark(at(stage_due - 2 * MIN))
    assert [t.state for t in result.transitions] == [DelayState.AT_RISK]  # before the breach
    eta = engine.eta_for("O1", "SKU-1")
    assert eta is None  # nothing on this lane was delivered yet


def test_advancing_time_touches_only_due_timers() -> None:
    engine = DelaysEngine(RULES)
    events = [make_event(f"O{i}", Status.PAID, i / 10, warehouse="WH-1") for i in range(20_000)]
    engine.process(events)
    fires_before = engine.stats()["timer_fires"]
    assert engine.stats()["pending_timers"] == 20_000
    engine.advance_watermark(at(2 * HOUR))  # nothing is due yet
    assert engine.stats()["timer_fires"] == fires_before
    engine.advance_watermark(at(4.8 * HOUR + 10))  # the first 101 reach their at-risk moment
    assert engine.stats()["timer_fires"] - fires_before == 101
    assert sum(1 for v in engine.views() if v.state is DelayState.AT_RISK) == 101
