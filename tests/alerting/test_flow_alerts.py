"""Flow incidents at the alert engine: the shipped tiers page a stopped hub at P2 and no
noise, and the notification says what the check saw and the estimate made of it, in zh and
en, never "Impact: 0 orders". Pure: records from ``stream.core.flow_incidents``, times passed in.
The worker-driven proof is ``test_flow_page_worker.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import h3
import pytest
import yaml

from alerting.decisions import NotificationKind
from alerting.incident import IncidentEvent
from alerting.messages import MessageContext, render
from alerting.tier import Condition, Tier, TierPolicy
from alerting.titles import boundary_places
from dashboard.warroom import live, titles
from stream.core.flow_incidents import DROP, SURGE, Finding, FlowIncidents, InFlight
from stream.core.incident_model import AREA, Signature
from stream.stages.alerting_agent import incident_from_record

REPO = Path(__file__).resolve().parents[2]
SHIPPED = TierPolicy.model_validate(
    yaml.safe_load((REPO / "config" / "alerting.yaml").read_text(encoding="utf-8"))["tiers"]
)
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
STEP = 60.0
HUB = Signature("hub", ("HZ-3",))
#: 140 orders in flight at HZ-3 (inside and on their way), 2 VIP, the first promise in 95 min
THERE = InFlight(140, 14_000.0, 2, 0, NOW.timestamp() + 95 * 60, "330000")


def flow_incident(
    *findings: tuple[float, Finding], there: InFlight | None = THERE, state: str | None = None
) -> IncidentEvent:
    """The engine's input after the flow incidents saw ``findings`` at their minutes."""
    incidents = FlowIncidents(STEP, resolve_after=300.0)
    incidents.in_flight_of = (lambda sig, at: there) if there is not None else None
    records = []
    for minute, finding in findings:
        records += [e.record for e in incidents.update(NOW.timestamp() + minute * STEP, [finding])]
    record = records[-1] if state is None else {**records[-1], "state": state}
    return incident_from_record(record)


def drop(observed: int, expected: float, window: int = 3, sig: Signature = HUB) -> Finding:
    return Finding(DROP, sig, observed, expected, window, 1e-9)


def at(incident: IncidentEvent) -> datetime:
    return incident.updated_at


def test_a_hub_stopped_for_the_checks_window_pages_at_p2_at_once() -> None:
    stopped = flow_incident((0, drop(0, 60.0)))  # 0 of 60 scans in the 3-minute window
    assert stopped.flow is not None and stopped.flow.shortfall == 60 and stopped.flow.duration_s == 180
    assert stopped.affected_orders == 60 and stopped.order_value == pytest.approx(6000.0)
    assert SHIPPED.compute(stopped, at(stopped)) is Tier.P2
    assert SHIPPED.level(Tier.P2).page


@pytest.mark.parametrize(
    ("case", "findings", "tier"),
    [
        # at 40% of normal: not stopped; 36 scans behind is chat
        ("a drop to 40%", [(0, drop(24, 60.0))], Tier.P3),
        # a one-minute pause of a busy hub: not yet the check's window
        ("a one-minute pause", [(0, drop(0, 40.0, window=1))], Tier.P3),
        # a quiet hub: 20 behind is under the rule's 30
        ("a quiet hub", [(0, drop(0, 20.0))], Tier.P3),
    ],
)
def test_noise_does_not_page(case: str, findings: list[tuple[float, Finding]], tier: Tier) -> None:
    relaxed = InFlight(140, 14_000.0, 0, 0, NOW.timestamp() + 8 * 3600, "330000")  # no promise near
    incident = flow_incident(*findings, there=relaxed)
    assert SHIPPED.compute(incident, at(incident)) is tier, case


def test_a_partial_drop_holding_orders_due_soon_pages_by_the_promise_rule() -> None:
    """Not the flow rule: the shipped {min_affected_orders: 20, max_minutes_to_promise: 120},
    as for a delay incident (36 parcels behind at a hub whose first promise is 95 min away)."""
    incident = flow_incident((0, drop(24, 60.0)))
    assert incident.min_minutes_to_promise == 95.0 and incident.affected_orders == 36
    assert SHIPPED.compute(incident, at(incident)) is Tier.P2


def test_a_one_minute_pause_that_goes_on_pages_once_it_lasted_the_window() -> None:
    pause = drop(0, 40.0, window=1)
    relaxed = InFlight(140, 14_000.0, 0, 0, None, "330000")
    assert SHIPPED.compute(flow_incident((0, pause), there=relaxed), NOW) is Tier.P3
    lasted = flow_incident((0, pause), (1, drop(0, 80.0, window=2)), (2, drop(0, 120.0)), there=relaxed)
    assert lasted.flow is not None and lasted.flow.duration_s == 180
    assert SHIPPED.compute(lasted, at(lasted)) is Tier.P2


def test_a_recovering_hub_is_no_longer_stopped() -> None:
    recovering = flow_incident((0, drop(0, 60.0)), state="recovering", there=InFlight(140, 0.0, 0, 0, None, None))
    assert SHIPPED.compute(recovering, at(recovering)) is Tier.P3  # its 60 held-up orders remain


def test_the_flow_thresholds_hold_for_no_other_incident() -> None:
    rule = Condition(max_flow_ratio=0.2)
    late = incident_from_record(
        {
            "incident_id": "i9",
            "kind": "delay",
            "state": "open",
            "dimension": "hub",
            "root_cause": {"hub": "HZ-3"},
            "counts": {"orders": 7},
            "at": NOW.isoformat(),
        }
    )
    assert not rule.holds(late, NOW)
    surge = flow_incident((0, Finding(SURGE, Signature("channel", ("douyin",)), 600, 60.0, 3, 1e-12)))
    assert not rule.holds(surge, NOW) and surge.affected_orders == 0
    assert surge.flow is not None and surge.flow.excess == 540


def page(incident: IncidentEvent, language: str) -> tuple[str, str]:
    return render(
        MessageContext(
            kind=NotificationKind.PAGE,
            tier=Tier.P2,
            incidents=[incident],
            now=at(incident),
            language=language,  # type: ignore[arg-type]
            time_zone="Asia/Shanghai",
            user="alice",
            step=0,
        )
    )


def test_a_stopped_hubs_page_says_how_long_how_far_behind_and_which_orders() -> None:
    stopped = flow_incident((0, drop(0, 60.0)), (1, drop(0, 60.0)), (3, drop(0, 60.0)))
    title, text = page(stopped, "en")
    assert title == "[P2 PAGE] HZ-3 hub: scans stopped"
    assert text.splitlines()[:4] == [
        "You are on call (alice).",
        "HZ-3 hub: scans at 0% of normal for 6 min (0 in the last 3 min, 60 expected);"
        " ~120 parcel scans behind (estimate).",
        "Orders held up: ~120 of 140 in flight there, value ~12,000.00, 2 VIP (estimate).",
        "Earliest promise in 92 min.",  # 95 min from the start, 3 min later
    ]
    zh_title, zh_text = page(stopped, "zh-CN")
    assert zh_title == "【P2 呼叫值班】分拨中心 HZ-3：扫描中断"
    assert zh_text.splitlines()[1:3] == [
        "分拨中心 HZ-3：扫描量为正常的 0%，已持续 6 分钟（最近 3 分钟 0 次，正常约 60 次）；"
        "约 120 件包裹扫描滞后（估算）。",
        "受阻订单：约 120 单（该处在途 140 单），金额约 12,000.00，VIP 2 单（估算）。",
    ]
    assert "Impact: 0 orders" not in text and "影响：订单 0 单" not in zh_text


def test_a_partial_drop_of_a_source_says_its_share_without_orders_it_cannot_know() -> None:
    lagging = flow_incident((0, drop(12, 60.0, sig=Signature("source", ("wms",)))), there=None)
    _, text = page(lagging, "en")
    assert text.splitlines()[1] == (
        "Source wms: scans at 20% of normal for 3 min (12 in the last 3 min, 60 expected);"
        " ~48 parcel scans behind (estimate)."
    )
    assert "Orders held up" not in text and "Impact:" not in text


@pytest.mark.parametrize(
    ("lat", "lon", "zh", "en"),
    [(30.27, 120.16, "浙江一带", "Around Zhejiang"), (23.13, 113.26, "广东一带", "Around Guangdong")],
    ids=["hangzhou", "guangzhou"],
)
def test_an_area_flow_incident_names_its_province_in_the_page_language(
    lat: float, lon: float, zh: str, en: str
) -> None:
    cell = h3.latlng_to_cell(lat, lon, 4)
    area = flow_incident((0, drop(0, 90.0, sig=Signature(AREA, (cell,)))), there=None)
    (zh_title, zh_text), (en_title, en_text) = page(area, "zh-CN"), page(area, "en")
    assert zh_title == f"【P2 呼叫值班】{zh}：扫描中断" and en_title == f"[P2 PAGE] {en}: scans stopped"
    assert "地图范围外" not in zh_text and "outside the map area" not in en_text


def test_a_message_of_flow_and_delay_incidents_totals_only_the_counted_orders() -> None:
    stopped = flow_incident((0, drop(0, 60.0)))
    late = IncidentEvent(
        incident_id="late-1",
        kind="order_late",
        state="open",
        labels={"dimension": "warehouse", "warehouse": "WH-1"},
        affected_orders=12,
        affected_skus=14,
        first_seen=NOW,
        updated_at=NOW,
        title="warehouse=WH-1: 14 SKUs late",
    )
    _, text = render(
        MessageContext(
            kind=NotificationKind.FIRING, tier=Tier.P2, incidents=[late, stopped], now=at(stopped), language="en"
        )
    )
    assert "Impact: 12 orders, 14 SKUs, value 0.00." in text
    assert "HZ-3 hub: scans at 0% of normal for 3 min" in text


def test_the_war_room_names_an_area_flow_incident_by_its_province_too() -> None:
    cell = h3.latlng_to_cell(30.27, 120.16, 4)
    incidents = FlowIncidents(STEP, resolve_after=300.0)
    [opened] = incidents.update(NOW.timestamp(), [drop(0, 90.0, sig=Signature(AREA, (cell,)))])
    record = opened.record
    shown = live.incidents({"items": {record["incident_id"]: record}}, None)[0]
    # places that cannot name a cell (as for a cell whose centre is at sea): the record's region does
    assert titles.incident_title(shown, boundary_places(), "zh-CN") == "浙江一带：扫描中断"
    assert titles.incident_title(shown, boundary_places(), "en") == "Around Zhejiang: scans stopped"
