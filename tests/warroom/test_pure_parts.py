"""The war-room's small pure parts (KPI trends: test_views_js.py): zone drafts, order lineage, labels, silence
matchers, local times, and the module boundaries (no callback reaches InfluxDB or Kafka)."""

from __future__ import annotations

import ast
import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from alerting.matchers import parse_matcher
from dashboard.warroom import i18n, lineage, live, localtime, zone_drafts
from dashboard.warroom.panels import alerts as alerts_panel
from dashboard.warroom.panels.incidents import spark_text

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
WARROOM = Path(__file__).resolve().parents[2] / "dashboard" / "warroom"


# Disruption-zone drafts ------------------------------------------------------------------------


def upload(data: object) -> str:
    return "data:application/geo+json;base64," + base64.b64encode(json.dumps(data).encode()).decode()


def test_lasso_on_the_map_becomes_a_polygon_draft() -> None:
    draft = zone_drafts.from_lasso({"points": [], "lassoPoints": {"geo": [[120, 30], [121, 30], [121, 31]]}})
    assert draft is not None and draft["source"] == "lasso"
    assert draft["geometry"]["type"] == "Polygon"
    assert zone_drafts.from_lasso({"points": []}) is None and zone_drafts.from_lasso(None) is None


def test_uploaded_geojson_gives_its_first_polygon_and_bad_files_say_why() -> None:
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}},
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[[120, 30], [121, 30], [121, 31], [120, 30]]]},
            },
        ],
    }
    assert zone_drafts.from_upload(upload(collection), "zone.geojson")["geometry"]["type"] == "Polygon"
    with pytest.raises(zone_drafts.ZoneDraftError, match="no Polygon"):
        zone_drafts.from_upload(upload({"type": "Point", "coordinates": [1, 2]}), "p.json")
    with pytest.raises(zone_drafts.ZoneDraftError, match="not JSON"):
        zone_drafts.from_upload("data:x;base64," + base64.b64encode(b"{oops").decode(), "bad.json")
    with pytest.raises(zone_drafts.ZoneDraftError, match="WGS-84"):
        zone_drafts.from_upload(
            upload({"type": "Polygon", "coordinates": [[[500, 30], [501, 30], [501, 31], [500, 30]]]})
        )


def test_a_self_crossing_lasso_is_repaired_to_its_area() -> None:
    bow_tie = {"lassoPoints": {"geo": [[120, 30], [121, 31], [121, 30], [120, 31]]}}
    draft = zone_drafts.from_lasso(bow_tie)
    assert draft is not None and draft["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_orders_inside_a_zone() -> None:
    geometry = {"type": "Polygon", "coordinates": [[[120, 30], [121, 30], [121, 31], [120, 31], [120, 30]]]}
    events = pd.DataFrame({"order_id": ["in", "out"], "lat": [30.5, 35.0], "lon": [120.5, 120.5]})
    assert zone_drafts.inside(geometry, events)["order_id"].tolist() == ["in"]
    assert zone_drafts.bounds(geometry) == (120.0, 30.0, 121.0, 31.0)


# Order lineage --------------------------------------------------------------------------------

SNAPSHOT = {
    "order_id": "o-1",
    "seq": 3,
    "rollup": {"status": "linehaul"},
    "skus": {
        "A": {
            "status": "linehaul",
            "position": {"lat": 31.0, "lon": 121.0},
            "destination": {"lat": 39.9, "lon": 116.4},
            "timeline": [
                {"event_id": "e1", "status": "paid", "event_time": "2026-11-11T02:00:00+00:00", "flags": []},
                {"event_id": "e3", "status": "linehaul", "event_time": "2026-11-11T03:00:00+00:00", "flags": []},
                {
                    "event_id": "e2",
                    "status": "delivered",
                    "event_time": "2026-11-11T02:30:00+00:00",
                    "flags": ["late", "illegal"],
                    "reason": "delivered before out_for_delivery",
                },
            ],
        }
    },
}


def test_lineage_merges_snapshot_and_history_and_marks_outcomes() -> None:
    events = pd.DataFrame(
        {
            "time": pd.to_datetime(["2026-11-11T01:00:00Z", "2026-11-11T02:00:00Z"], utc=True),
            "event_id": ["e0", "e1"],
            "sku": ["A", "A"],
            "status": ["paid", "paid"],
            "lat": [30.0, 30.1],
            "lon": [120.0, 120.1],
            "late": [True, False],
            "illegal": [False, False],
            "source": ["oms", "oms"],
        }
    )
    merged = lineage.lineage(SNAPSHOT, events)
    assert merged["event_id"].tolist() == ["e0", "e1", "e2", "e3"]
    assert merged.set_index("event_id")["outcome"].to_dict() == {
        "e0": "late",
        "e1": "accepted",
        "e2": "rejected",
        "e3": "accepted",
    }
    assert "delivered before out_for_delivery" in str(merged.set_index("event_id").loc["e2", "detail"])
    assert merged.set_index("event_id").loc["e1", "lat"] == 30.1


def test_route_runs_through_event_positions_to_the_destination() -> None:
    events = pd.DataFrame(
        {
            "time": pd.to_datetime(["2026-11-11T02:00:00Z", "2026-11-11T02:10:00Z"], utc=True),
            "lat": [30.0, 30.0],
            "lon": [120.0, 120.0],
            "status": ["paid", "picked"],
        }
    )
    route = lineage.route(SNAPSHOT, events)
    assert route is not None
    assert list(zip(route.lats, route.lons, strict=True)) == [(30.0, 120.0), (31.0, 121.0), (39.9, 116.4)]
    assert lineage.route({"skus": {}}, pd.DataFrame()) is None


# Labels, alerts, time -----------------------------------------------------------------------------


def test_every_label_exists_in_both_languages_and_fills_placeholders() -> None:
    labels = i18n.keys()  # a function of the label table, not a dict's keys
    for key in labels:
        zh, en = i18n.both(key)
        assert zh and en, key
    assert i18n.label("en", "kpi.vs_earlier", minutes=10) == "vs 10 min ago"
    assert i18n.label("zh-TW", "title") == i18n.both("title")[0]
    assert i18n.label("en", "no.such.key") == "no.such.key"
    assert i18n.normalise(None) == i18n.ZH and i18n.normalise("en-GB") == i18n.EN


def test_silencing_an_alert_mutes_exactly_its_incidents() -> None:
    alert = live.alerts(
        {
            "items": {
                "a": {
                    "alert_id": "a",
                    "tier": "P2",
                    "incident_ids": ["inc.1", "inc-2"],
                    "labels": {"kind": "hub_stall"},
                }
            }
        }
    )[0]
    (text,) = alerts_panel.silence_matchers(alert)
    matcher = parse_matcher(text)  # what the gateway and the alerting engine will parse
    assert matcher.matches({"incident_id": "inc.1"}) and matcher.matches({"incident_id": "inc-2"})
    assert not matcher.matches({"incident_id": "incX1"}) and not matcher.matches({"incident_id": "inc.10"})
    no_incidents = live.alerts({"items": {"b": {"alert_id": "b", "labels": {"hub": 'H"1', "tier": "P2"}}}})[0]
    (by_label,) = alerts_panel.silence_matchers(no_incidents)
    assert parse_matcher(by_label).matches({"hub": 'H"1'}) and not parse_matcher(by_label).matches({"hub": "H1"})


def test_alert_feedback_names_the_outcome() -> None:
    ok = alerts_panel.feedback({"ok": True, "status": 202, "action": "ack", "alert": "a-1"}, "en")
    denied = alerts_panel.feedback(
        {
            "ok": False,
            "status": 403,
            "action": "ack",
            "alert": "a-1",
            "body": {"detail": "role viewer may not act_on_alerts"},
        },
        "en",
    )
    assert ok == ("Done: ack a-1 (202)", "feedback ok")
    assert denied[1] == "feedback error" and "403 role viewer" in denied[0]


def test_local_times() -> None:
    assert localtime.local_text("2026-11-11T02:00:00Z", "Asia/Shanghai") == "2026-11-11 10:00"
    assert localtime.local_text("2026-11-11T02:00:00", "Nowhere/City", seconds=True) == "2026-11-11 02:00:00"
    assert localtime.local_text("soon", "UTC") == "soon"
    assert spark_text([0, 5, 10]) == "▁▅█" and spark_text([]) == ""


# Boundaries -----------------------------------------------------------------------------------------


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_history_talks_to_influxdb_and_nothing_talks_to_kafka() -> None:
    network = {"httpx", "requests", "urllib3", "kafka", "aiokafka", "faust", "websockets"}
    offenders = {
        str(p.relative_to(WARROOM)): imported_modules(p) & network
        for p in WARROOM.rglob("*.py")
        if p.name != "history.py"
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert "httpx" in imported_modules(WARROOM / "history.py")
    assert sum(1 for _ in (WARROOM / "app.py").read_text().splitlines()) < 40


def test_alert_buttons_follow_the_role_and_the_state() -> None:
    firing, acked = live.alerts(
        {
            "items": {
                "a": {"alert_id": "a", "status": "firing", "tier": "P1"},
                "b": {
                    "alert_id": "b",
                    "status": "acked",
                    "tier": "P2",
                    "acked_by": "amy",
                    "acked_at": "2026-11-11T02:00:00Z",
                },
            }
        }
    )

    def buttons(alert: live.Alert, role: str | None) -> dict[str, bool]:
        card = alerts_panel.alert_card(alert, role, "en", alert.title, tz="Asia/Shanghai")
        found = {}
        for child in card.children:
            for button in getattr(child, "children", None) or []:
                if getattr(button, "id", None) and isinstance(button.id, dict):
                    found[button.id["action"]] = not button.disabled
        return found

    assert buttons(firing, "on-call") == {"ack": True, "resolve": True, "silence": True}
    assert buttons(firing, "viewer") == {"ack": False, "resolve": False, "silence": False}
    assert buttons(acked, "manager") == {"ack": False, "resolve": True, "silence": True}
    text = str(alerts_panel.alert_card(acked, "manager", "en", acked.title, tz="Asia/Shanghai").to_plotly_json())  # type: ignore[no-untyped-call]  # dash: unannotated
    assert "Acked by amy · 2026-11-11 10:00:00" in text
