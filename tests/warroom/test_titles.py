"""Human incident and alert titles (``dashboard.warroom.titles``) from the producers'
structured fields, in both languages."""

from __future__ import annotations

import h3

from dashboard.warroom import live, titles
from dashboard.warroom.panels.incidents import spark_text

HANGZHOU = h3.latlng_to_cell(30.27, 120.16, 7)
PLACES = titles.Places(
    region_name=lambda code, lang: {"330000": ("浙江省" if lang == "zh-CN" else "Zhejiang")}.get(code, code),
    place_of=lambda cell, lang: ("浙江省" if lang == "zh-CN" else "Zhejiang") if cell == HANGZHOU else None,
)


def incident(**record: object) -> live.Incident:
    base = {"incident_id": "i1", "kind": "delay", "state": "stable", "counts": {"orders": 412, "by_label": {}}}
    return live.incidents({"items": {"i1": {**base, **record}}}, None)[0]


def flow_incident(
    dimension: str, root_cause: dict[str, object], counts: dict[str, int] | None = None, **flow: object
) -> live.Incident:
    """A ``stream.core.flow_incidents`` record: counts of events, no orders; ``flow`` has the check."""
    return incident(kind="flow", dimension=dimension, root_cause=root_cause, counts=counts or {"orders": 0}, flow=flow)


def test_a_stalled_hub_says_what_where_and_how_big() -> None:
    hub = incident(
        dimension="hub",
        root_cause={"hub": "HZ-3"},
        counts={"orders": 412, "skus": 500, "by_label": {"stalled": 480, "late": 20}},
    )
    assert titles.incident_title(hub, PLACES, "en") == "Hub HZ-3 stopped scanning · 412 orders"
    assert titles.incident_title(hub, PLACES, "zh-CN") == "分拨中心 HZ-3 停止扫描 · 412 单"
    assert titles.kind_state(hub, "en") == "Delays · stable"
    assert titles.kind_state(hub, "zh-CN") == "延误 · 稳定"


def test_areas_regions_and_carriers_are_named_by_place() -> None:
    area = incident(dimension="area", root_cause={"h3_cells": [HANGZHOU], "lat": 30.27, "lon": 120.16})
    assert titles.incident_title(area, PLACES, "en") == "Delays around Zhejiang · 412 orders"
    slow = incident(dimension="carrier_region", root_cause={"carrier": "SF", "region": "330000"})
    assert titles.incident_title(slow, PLACES, "zh-CN") == "承运商 SF 在浙江省变慢 · 412 单"
    late = incident(dimension="channel", root_cause={"channel": "olist-marketplace"})
    assert titles.incident_title(late, PLACES, "en") == "Late orders from channel olist-marketplace · 412 orders"


def test_a_withdrawn_zone_keeps_its_name() -> None:
    withdrawn = incident(
        dimension="area",
        root_cause={"area": "z-17"},
        state="resolved",
        zone={"id": "z-17", "name": "Typhoon drill", "reason": ""},
    )
    assert titles.incident_title(withdrawn, PLACES, "en") == "Disruption zone “Typhoon drill” · 412 orders"
    assert titles.kind_state(withdrawn, "zh-CN") == "延误 · 已恢复"


def test_data_quality_names_the_finding_and_its_source() -> None:
    dq = incident(
        kind="data_quality",
        dimension="device_id",
        root_cause={"device_id": "PDA-9"},
        counts={"orders": 9, "by_label": {"gps_jump": 11}},
    )
    assert titles.incident_title(dq, PLACES, "en") == "GPS jumps · Scanner PDA-9 · 11 findings"
    assert titles.kind_state(dq, "zh-CN") == "数据质量 · 稳定"


def test_alerts_say_what_their_incidents_say() -> None:
    hub = incident(dimension="hub", root_cause={"hub": "HZ-3"}, counts={"orders": 412, "by_label": {"stalled": 3}})
    named = {i.incident_id: i for i in titles.named([hub], PLACES, "en")}
    alert = live.alerts({"items": {"a": {"alert_id": "a", "incident_ids": ["i1"], "labels": {"kind": "hub_stall"}}}})[0]
    assert titles.alert_title(alert, named, PLACES, "en") == "Hub HZ-3 stopped scanning · 412 orders"
    orphan = live.alerts(
        {
            "items": {
                "b": {"alert_id": "b", "incident_ids": ["gone"], "labels": {"kind": "data_quality", "region": "330000"}}
            }
        }
    )[0]
    assert titles.alert_title(orphan, named, PLACES, "zh-CN") == "数据质量 · 浙江省"
    assert "kind=" not in titles.alert_title(orphan, named, PLACES, "en")


def test_a_steady_trend_is_a_flat_line_not_a_solid_block() -> None:
    assert spark_text([273] * 6) == "▁" * 6
    assert spark_text([100, 150, 200]) == "▁▅█"


def test_time_travel_incidents_are_titled_from_their_root_cause_text() -> None:
    """InfluxDB keeps an incident's root-cause text, not its structure."""
    hub = incident(root_cause_text="hub=HZ-3", counts={"orders": 7})
    assert titles.incident_title(hub, PLACES, "en") == "Delays at hub HZ-3 · 7 orders"
    slow = incident(root_cause_text="carrier=SF,region=330000", counts={"orders": 7})
    assert titles.incident_title(slow, PLACES, "en") == "Carrier SF slowed down in Zhejiang · 7 orders"
    area = incident(root_cause_text=f"area={HANGZHOU}+2", counts={"orders": 7})
    assert titles.incident_title(area, PLACES, "zh-CN") == "浙江省一带延误 · 7 单"
    zone = incident(root_cause_text="disruption zone Typhoon drill (weather)", counts={"orders": 7})
    assert titles.incident_title(zone, PLACES, "en") == "disruption zone Typhoon drill (weather) · 7 orders"


def test_a_size_is_stated_only_when_there_is_one() -> None:
    skus_only = incident(dimension="source", root_cause={"source": "yto-tms"}, counts={"orders": 0, "skus": 5})
    assert titles.incident_title(skus_only, PLACES, "en") == "Source yto-tms · 5 SKUs"
    empty = incident(dimension="source", root_cause={"source": "yto-tms"}, counts={"orders": 0})
    assert titles.incident_title(empty, PLACES, "zh-CN") == "数据源 yto-tms"


def test_a_flow_incident_says_how_far_the_scans_fell_or_rose() -> None:
    """``stream.core.flow_incidents`` records: counts of events, no orders; ``flow`` has the check."""
    drop = flow_incident(
        "hub",
        {"hub": "HZ-3"},
        counts={"orders": 0, "skus": 0},
        check="drop",
        observed=8,
        expected=40.0,
        window_s=600,
        ratio=0.2,
    )
    assert titles.incident_title(drop, PLACES, "en") == "HZ-3 hub: scans dropped to 20% of normal"
    assert titles.incident_title(drop, PLACES, "zh-CN") == "分拨中心 HZ-3：扫描量降至正常的 20%"
    assert titles.kind_state(drop, "en") == "Flow · stable"
    stopped = flow_incident("warehouse", {"warehouse": "WH-1"}, check="drop", observed=0, expected=35.0)
    assert titles.incident_title(stopped, PLACES, "en") == "WH-1 warehouse: scans stopped"
    surge = flow_incident("channel", {"channel": "douyin"}, check="surge", observed=120, expected=40.0)
    assert titles.incident_title(surge, PLACES, "zh-CN") == "渠道 douyin：扫描量激增至正常的 300%"
    area = flow_incident("area", {"h3_cells": [HANGZHOU]}, check="drop", observed=5, expected=20.0)
    assert titles.incident_title(area, PLACES, "en") == "Around Zhejiang: scans dropped to 25% of normal"
    assert "0 orders" not in titles.incident_title(area, PLACES, "en")


def test_a_flow_incident_row_says_how_much_of_normal_flow_is_left_not_zero_orders() -> None:
    drop = flow_incident("hub", {"hub": "HZ-3"}, check="drop", observed=8, expected=40.0, window_s=600)
    assert titles.size(drop, "en") == ("20%", "of normal scans")
    assert titles.size_detail(drop, "en") == ("Scans", "8 (expected 40 in 10 min)")
    assert titles.named([drop], PLACES, "zh-CN")[0].root_cause == "分拨中心 HZ-3"
    late = incident(dimension="hub", root_cause={"hub": "HZ-3"})
    assert titles.size(late, "zh-CN") == ("412", "受影响订单")
