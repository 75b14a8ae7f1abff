"""Data-quality findings: GPS jumps, clocks from the future or far past, refused transitions."""

from __future__ import annotations

from datetime import timedelta

from delays_traffic import HOUR, MIN, T0, at, make_event

from stream.contract import OrderEvent, Status
from stream.core.data_quality import DataQualityKind, IllegalTransition
from stream.core.delays_engine import DelaysEngine
from stream.core.sla import SlaRules

RULES = SlaRules.model_validate(
    {
        "stages": {"in_transit": {"starts": ["linehaul", "hub_arrival"], "ends": "out_for_delivery", "within": "8h"}},
        "data_quality": {"incidents": {"min_count": 5, "dimensions": ["device_id", "source"], "expire_items": True}},
    }
)
HANGZHOU: dict[str, object] = {"lat": 30.27, "lon": 120.15}
BEIJING: dict[str, object] = {"lat": 39.90, "lon": 116.40}


def test_gps_jump_faster_than_any_vehicle_names_both_devices() -> None:
    engine = DelaysEngine(RULES)
    engine.process([make_event("O1", Status.HUB_ARRIVAL, 0, device_id="PDA-A", **HANGZHOU)])
    result = engine.process([make_event("O1", Status.LINEHAUL, 1 * HOUR, device_id="PDA-B", **BEIJING)])
    (finding,) = result.findings
    assert finding.kind is DataQualityKind.GPS_JUMP
    assert finding.device_ids == ("PDA-A", "PDA-B")
    assert "km/h" in finding.detail
    # the same distance in a day is a truck, and air legs are exempt
    engine.process([make_event("O2", Status.HUB_ARRIVAL, 0, **HANGZHOU)])
    assert engine.process([make_event("O2", Status.LINEHAUL, 24 * HOUR, **BEIJING)]).findings == []
    engine.process([make_event("O3", Status.HUB_ARRIVAL, 0, **HANGZHOU)])
    flight = make_event("O3", Status.LINEHAUL, 2 * HOUR, attributes={"mode": "air"}, **BEIJING)
    assert engine.process([flight]).findings == []


def test_future_and_far_past_timestamps_are_flagged_and_do_not_move_time() -> None:
    engine = DelaysEngine(RULES)
    now = T0 + timedelta(hours=10)
    engine.process([make_event("O1", Status.HUB_ARRIVAL, 10 * HOUR - 60)], now=now)
    watermark = engine.watermark()
    ahead = make_event("O2", Status.HUB_ARRIVAL, 10 * HOUR + 2 * HOUR, device_id="PDA-X")
    slightly = make_event("O3", Status.HUB_ARRIVAL, 10 * HOUR + 4 * MIN, device_id="PDA-Y")
    ancient = make_event("O4", Status.HUB_ARRIVAL, 10 * HOUR - 40 * 24 * HOUR, device_id="PDA-Z")
    result = engine.process([ahead, slightly, ancient], now=now)
    assert [(f.kind, f.device_ids) for f in result.findings] == [
        (DataQualityKind.FUTURE_TIMESTAMP, ("PDA-X",)),
        (DataQualityKind.PAST_TIMESTAMP, ("PDA-Z",)),
    ]
    # only the trustworthy event (4 min ahead is within tolerance) moved the watermark
    after = engine.watermark()
    assert after == at(10 * HOUR + 4 * MIN - 5 * MIN)
    assert watermark is not None and after is not None and after > watermark
    # the flagged scans still count, at the partition's event time when they were received
    # (its only record until then was a minute before ``now``)
    view = engine.view("O2", "SKU-1")
    assert view is not None and view.stage_due == now.timestamp() - 60 + 8 * HOUR


def test_refused_transitions_are_findings_not_state_changes() -> None:
    engine = DelaysEngine(RULES)
    engine.process([make_event("O1", Status.DELIVERED, 0, device_id="PDA-C")])
    refused = make_event("O1", Status.PAID, 60, device_id="PDA-C")
    result = engine.process([IllegalTransition(refused, Status.DELIVERED, "delivered is terminal")])
    (finding,) = result.findings
    assert finding.kind is DataQualityKind.ILLEGAL_TRANSITION
    assert finding.detail == "delivered -> paid: delivered is terminal"
    assert finding.to_dict()["device_ids"] == ["PDA-C"]
    view = engine.view("O1", "SKU-1")
    assert view is not None and view.status == "delivered"


def test_misconfigured_source_is_named_rather_than_each_of_its_devices() -> None:
    engine = DelaysEngine(RULES)
    batch: list[OrderEvent | IllegalTransition] = []
    for i in range(120):
        source = "wms-east" if i % 4 == 0 else "pda"
        event = make_event(f"O{i}", Status.HUB_ARRIVAL, i * 30, device_id=f"PDA-{i % 5}", source=source)
        if source == "wms-east":
            batch.append(IllegalTransition(event, Status.DELIVERED, "delivered is terminal"))
        else:
            batch.append(event)
    result = engine.process(batch)
    result.extend(engine.advance_watermark(at(2 * HOUR)))
    roots = {str(e.record["root_cause"]) for e in result.incidents}
    assert roots == {str({"source": "wms-east"})}
