"""What an incident tells the alert tiers: order value, VIP and penalty orders (each order
once, however many of its SKUs are bad), the earliest promise of its current SKUs, and the
labels its SKUs share; kept as scalars and restored from snapshots taken before them."""

from __future__ import annotations

from datetime import timedelta

from delays_traffic import at, make_event

from stream.contract import OrderEvent, Status
from stream.core.data_quality import IllegalTransition
from stream.core.delays_engine import DelaysEngine
from stream.core.incident_detector import IncidentDetector
from stream.core.incident_model import ClusterItem, Incident, IncidentSettings
from stream.core.sku_delay import SkuDelay
from stream.core.sla import SlaRules
from stream.stages.alerting_agent import incident_from_record

SETTINGS = IncidentSettings(dimensions=["hub"], min_count=8, window=timedelta(hours=2), eval_every=timedelta(minutes=5))
HOUR = 3600.0


def _values(hub: str, region: str) -> dict[str, tuple[str, ...]]:
    return {"hub": (hub,), "region": (region,), "warehouse": ("WH-1",), "carrier": ("SF",), "channel": ("tmall",)}


def _detector() -> IncidentDetector:
    det = IncidentDetector("delay", SETTINGS)
    t = 0.0
    while t < 3 * HOUR:  # ten healthy hubs, and HUB-X's share of the flow
        for n in range(10):
            det.observe_flow(t, _values(f"HUB-{n}", "320000"))
        det.observe_flow(t, _values("HUB-X", "330000"))
        t += 60.0
    return det


def _stall_hub_x(det: IncidentDetector, orders: int, at: float) -> None:
    for n in range(orders):
        for sku in ("A", "B"):  # two SKUs per order: the order counts once
            det.mark_bad(
                ClusterItem(
                    f"O{n}|{sku}",
                    f"O{n}",
                    sku,
                    at + n,
                    "stalled",
                    _values("HUB-X", "330000"),
                    value=250.0,
                    vip=n < 3,
                    penalty=n < 5,
                    promise=at + HOUR + 60.0 * n,
                )
            )


def test_an_incident_sums_each_orders_value_once_and_keeps_the_earliest_promise() -> None:
    det = _detector()
    start = 3 * HOUR
    _stall_hub_x(det, 12, start)
    [event] = det.advance(start + 10 * 60)
    record = event.to_record()
    assert record["counts"]["orders"] == 12 and record["counts"]["skus"] == 24
    at = start + 10 * 60
    assert record["impact"] == {
        "order_value": 3000.0,
        "vip_orders": 3,
        "penalty_orders": 5,
        "min_minutes_to_promise": round((start + HOUR - at) / 60.0, 1),
    }
    assert record["labels"] == {
        "hub": "HUB-X",
        "warehouse": "WH-1",
        "carrier": "SF",
        "region": "330000",
        "channel": "tmall",
    }
    incident = incident_from_record(record)
    assert (incident.order_value, incident.vip_orders, incident.penalty_orders) == (3000.0, 3, 5)
    assert incident.min_minutes_to_promise == record["impact"]["min_minutes_to_promise"]
    assert incident.labels["node"] == "HUB-X" and incident.labels["region"] == "330000"


def test_the_earliest_promise_follows_the_skus_still_bad() -> None:
    det = _detector()
    start = 3 * HOUR
    _stall_hub_x(det, 12, start)
    det.advance(start + 10 * 60)
    det.clear("O0|A", start + 11 * 60)
    det.clear("O0|B", start + 11 * 60)  # the order with the earliest promise moved on
    det.advance(start + 15 * 60)
    [inc] = det.open_incidents
    assert inc.min_promise == start + HOUR + 60.0  # O1's
    assert inc.order_value == 3000.0  # joined orders stay counted, like ``counts.orders``


def test_a_label_is_named_only_when_nearly_all_its_skus_share_it() -> None:
    det = _detector()
    start = 3 * HOUR
    for n in range(10):
        region = "330000" if n < 6 else "310000"
        det.mark_bad(ClusterItem(f"O{n}|A", f"O{n}", "A", start + n, "stalled", _values("HUB-X", region)))
    [event] = det.advance(start + 10 * 60)
    assert "region" not in event.to_record()["labels"] and event.to_record()["labels"]["hub"] == "HUB-X"


def test_snapshots_taken_before_the_impact_fields_still_restore() -> None:
    det = _detector()
    _stall_hub_x(det, 12, 3 * HOUR)
    det.advance(3 * HOUR + 10 * 60)
    [inc] = det.open_incidents
    old = inc.to_dict()
    for name in ("order_value", "vip_orders", "penalty_orders", "min_promise", "common", "emitted_impact"):
        del old[name]
    restored = Incident.from_dict(old)
    assert (restored.order_value, restored.vip_orders, restored.min_promise, restored.common) == (0.0, 0, None, {})
    assert Incident.from_dict(inc.to_dict()) == inc
    item = ClusterItem("O1|A", "O1", "A", 1.0, "stalled", {"hub": ("H",)}).to_dict()
    for name in ("value", "vip", "penalty", "promise"):
        del item[name]
    assert ClusterItem.from_dict(item).value == 0.0
    sku = SkuDelay("O1|A", "O1", "A", 0, "paid", 0, 0.0, 0.0, order_value=99.0, vip=True, penalty=True)
    saved = sku.to_dict()
    assert SkuDelay.from_dict(saved) == sku
    for name in ("order_value", "vip", "penalty"):
        del saved[name]
    assert SkuDelay.from_dict(saved).order_value is None


def test_a_data_quality_incident_names_the_hub_and_region_its_findings_share() -> None:
    rules = SlaRules.model_validate(
        {
            "stages": {
                "in_transit": {"starts": ["linehaul", "hub_arrival"], "ends": "out_for_delivery", "within": "8h"}
            },
            "data_quality": {
                "incidents": {"min_count": 5, "dimensions": ["device_id", "source"], "expire_items": True}
            },
        }
    )
    engine = DelaysEngine(rules)
    batch: list[OrderEvent | IllegalTransition] = []
    for i in range(120):
        broken = i % 4 == 0  # one scanner at HUB-Q refuses what it scans
        event = make_event(
            f"O{i}",
            Status.HUB_ARRIVAL,
            i * 30,
            source="pda",
            region="330000" if broken else "320000",
            device_id="PDA-BAD" if broken else f"PDA-{i % 5}",
            node="HUB-Q" if broken else f"HUB-{i % 7}",
        )
        batch.append(IllegalTransition(event, Status.DELIVERED, "delivered is terminal") if broken else event)
    result = engine.process(batch)
    result.extend(engine.advance_watermark(at(2 * HOUR)))
    [record] = {e.record["incident_id"]: e.record for e in result.incidents}.values()
    assert record["root_cause"] == {"device_id": "PDA-BAD"}
    assert record["labels"]["hub"] == "HUB-Q" and record["labels"]["region"] == "330000"
    incident = incident_from_record(record)
    assert incident.kind == "data_quality"
    assert (incident.labels["node"], incident.labels["device_id"]) == ("HUB-Q", "PDA-BAD")


def test_a_vip_order_joining_is_published_even_when_the_count_barely_moves() -> None:
    det = _detector()
    start = 3 * HOUR
    for n in range(40):
        det.mark_bad(ClusterItem(f"O{n}|A", f"O{n}", "A", start + n, "stalled", _values("HUB-X", "330000")))
    [opened] = det.advance(start + 10 * 60)
    assert opened.record["impact"]["vip_orders"] == 0
    det.mark_bad(ClusterItem("O99|A", "O99", "A", start + 11 * 60, "stalled", _values("HUB-X", "330000"), vip=True))
    [update] = det.advance(start + 15 * 60)  # 41 SKUs: not a tenth more, but one VIP order more
    assert update.record["counts"]["current"] == 41 and update.record["impact"]["vip_orders"] == 1
