"""Notification text (``alerting.messages``): the incident titles are the war-room's
(``alerting.titles``), human and in the receiver's language, not the producer's log title."""

from __future__ import annotations

from datetime import UTC, datetime

from alerting_testkit import delay_record

from alerting.decisions import NotificationKind
from alerting.incident import IncidentEvent
from alerting.messages import MessageContext, incident_title, render
from alerting.tier import Tier
from alerting.titles import boundary_places
from dashboard.warroom import live, titles
from stream.core.flow_incidents import Finding, FlowIncidents
from stream.core.incident_model import Signature
from stream.stages.alerting_agent import incident_from_record

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def event(incident_id: str = "i1", **fields: object) -> IncidentEvent:
    base: dict[str, object] = {
        "incident_id": incident_id,
        "kind": "hub_stall",
        "state": "growing",
        "labels": {"dimension": "hub", "node": "HZ-3", "region": "330000"},
        "affected_orders": 412,
        "affected_skus": 500,
        "first_seen": NOW,
        "updated_at": NOW,
        "title": "hub=HZ-3: 500 SKUs delayed",
    }
    return IncidentEvent.model_validate({**base, **fields})


def context(language: str, *incidents: IncidentEvent) -> MessageContext:
    return MessageContext(
        kind=NotificationKind.FIRING,
        tier=Tier.P1,
        incidents=incidents,
        now=NOW,
        language=language,
        time_zone="Asia/Shanghai",
    )  # type: ignore[arg-type]


def test_the_title_says_what_where_and_how_big_in_the_receivers_language() -> None:
    zh_title, zh_text = render(context("zh-CN", event()))
    assert zh_title == "【P1 告警】分拨中心 HZ-3 延误 · 412 单"
    en_title, en_text = render(context("en", event()))
    assert en_title == "[P1 FIRING] Delays at hub HZ-3 · 412 orders"
    assert "hub=HZ-3" not in en_title + en_text + zh_title + zh_text
    assert "- 分拨中心 HZ-3 延误 · 412 单【扩大中】" in zh_text


def test_regions_are_named_and_more_incidents_counted() -> None:
    slow = event(
        "i2",
        kind="carrier_slowdown",
        affected_orders=30,
        labels={"dimension": "carrier_region", "carrier": "SF", "region": "330000"},
    )
    assert incident_title(slow, "zh-CN") == "承运商 SF 在浙江变慢 · 30 单"
    assert incident_title(slow, "en") == "Carrier SF slowed down in Zhejiang · 30 orders"
    title, _ = render(context("en", event(), slow))
    assert title == "[P1 FIRING] Delays at hub HZ-3 · 412 orders (+1 more)"
    area = event("i3", kind="region_disruption", labels={"dimension": "area", "region": "330000"}, affected_orders=9)
    assert incident_title(area, "zh-CN") == "浙江一带延误 · 9 单"
    dq = event(
        "i4",
        kind="data_quality",
        labels={"dimension": "device_id", "device_id": "PDA-9"},
        affected_orders=0,
        affected_skus=0,
    )
    assert incident_title(dq, "en").startswith("Data quality · Scanner PDA-9")
    unknown = event("i5", labels={}, title="something the producer said")
    assert incident_title(unknown, "en") == "something the producer said · 412 orders"


def test_the_war_room_and_the_notification_give_one_incident_the_same_title() -> None:
    record = delay_record("i1", {"carrier": "SF", "region": "330000"}, orders=412, skus=500, at=NOW, state="growing")
    shown = live.incidents({"items": {"i1": record}}, None)[0]
    for lang in ("zh-CN", "en"):
        sent = event(labels={"dimension": "carrier_region", "carrier": "SF", "region": "330000"})
        assert titles.incident_title(shown, boundary_places(), lang) == incident_title(sent, lang)


def flow_record(check: str, dim: str, value: str, observed: int, expected: float) -> dict[str, object]:
    """An ``order-incidents`` record as the flow checks' incidents produce it."""
    incidents = FlowIncidents(step=60.0, resolve_after=300.0)
    finding = Finding(check, Signature(dim, (value,)), observed, expected, window_slots=3, p_value=1e-6)
    (opened,) = incidents.update(NOW.timestamp(), [finding])
    return opened.record


def test_a_flow_incident_is_notified_as_the_war_room_titles_it_not_as_delays() -> None:
    """The alerting agent's mapping keeps kind ``flow`` and the counts: the notification says
    how far the scans fell, like the war-room's row, not "Delays at hub HZ-3"."""
    record = flow_record("drop", "hub", "HZ-3", observed=8, expected=40.0)
    sent = incident_from_record(record)
    assert sent.kind == "flow"
    assert sent.flow is not None and (sent.flow.check, sent.flow.observed, sent.flow.expected) == ("drop", 8, 40.0)
    assert IncidentEvent.model_validate(sent.model_dump(mode="json")) == sent  # the engine's saved state keeps it
    zh_title, zh_text = render(context("zh-CN", sent))
    assert zh_title == "【P1 告警】分拨中心 HZ-3：扫描量降至正常的 20%"
    en_title, en_text = render(context("en", sent))
    assert en_title == "[P1 FIRING] HZ-3 hub: scans dropped to 20% of normal"
    assert "Delays" not in en_title + en_text and "延误" not in zh_title + zh_text
    shown = live.incidents({"items": {record["incident_id"]: record}}, None)[0]
    for lang in ("zh-CN", "en"):
        assert titles.incident_title(shown, boundary_places(), lang) == incident_title(sent, lang)


def test_flow_stops_and_surges_are_titled_by_their_check_and_place() -> None:
    stopped = incident_from_record(flow_record("drop", "source", "wms", observed=0, expected=19.0))
    assert incident_title(stopped, "en") == "Source wms: scans stopped"
    surge = incident_from_record(flow_record("surge", "channel", "douyin", observed=1574, expected=24.0))
    assert incident_title(surge, "zh-CN") == "渠道 douyin：扫描量激增至正常的 6,558%"
    # a delay incident's record has no flow counts and keeps its delay kind
    late = incident_from_record(delay_record("i9", {"hub": "HZ-3"}, orders=7, at=NOW))
    assert (late.kind, late.flow) == ("hub_stall", None)
    assert incident_title(late, "en") == "Delays at hub HZ-3 · 7 orders"
