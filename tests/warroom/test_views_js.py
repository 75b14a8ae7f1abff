"""The war-room's live views drawn in the browser (``assets/warroom_views.js``): KPIs from the
live stores, trends, the hexagons' new values, the coverage note's counts and the badge,
run in node on the shipped asset itself (the browser tests run the same file in Chromium)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dashboard.warroom import i18n, trends
from dashboard.warroom.panels import kpis as kpis_panel

VIEWS = Path(__file__).resolve().parents[2] / "dashboard" / "warroom" / "assets" / "warroom_views.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")
BOUNDS = {"max_samples": trends.MAX_SAMPLES, "min_step_s": trends.MIN_STEP_S}
T0 = "2026-11-11T02:00:00.000Z"
MS0 = int(datetime(2026, 11, 11, 2, tzinfo=UTC).timestamp() * 1000)


def calls(*steps: tuple[str, list[Any]]) -> list[Any]:
    """Results of ``views[name](...args)`` for each step, in one node process."""
    script = (
        f"const v = require({json.dumps(str(VIEWS))});"
        "const steps = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "const out = steps.map(([f, a]) => v[f](...a));"
        "process.stdout.write(JSON.stringify(out, (k, x) => x === undefined ? null : x));"
    )
    done = subprocess.run(
        [str(NODE), "-e", script], input=json.dumps(steps), capture_output=True, text=True, timeout=30, check=True
    )
    return list(json.loads(done.stdout))


def evaluate(expression: str) -> Any:
    """A JavaScript expression's value, with the views bound to ``v``."""
    script = f"const v = require({json.dumps(str(VIEWS))}); process.stdout.write(JSON.stringify({expression}));"
    done = subprocess.run([str(NODE), "-e", script], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def call(name: str, *args: Any) -> Any:
    return calls((name, list(args)))[0]


def store(items: dict[str, Any]) -> dict[str, Any]:
    return {"seq": 1, "items": items}


def test_kpis_come_from_the_latest_kpis_item_and_count_incidents_and_alerts() -> None:
    kpis = store(
        {
            "a": {"skus_in_flight": 5, "at": "2026-11-11T10:00:00Z"},
            "b": {
                "skus_in_flight": 200_000,
                "orders_in_flight": 90_000,
                "on_time_rate": 0.95,
                "at_risk": 10,
                "late": 4,
                "stalled": 2,
                "eta_slips": 3,
                "at": "2026-11-11T10:00:05Z",
            },
        }
    )
    incidents = store({"i1": {"incident_id": "i1", "state": "open"}, "i2": {"incident_id": "i2", "state": "resolved"}})
    alerts = store(
        {
            "a1": {"alert_id": "a1", "status": "firing", "tier": "P1", "incident_ids": ["i1"]},
            "a2": {"alert_id": "a2", "status": "resolved", "tier": "P3"},
        }
    )
    result = call("kpis", kpis, incidents, alerts, None)
    assert (result["skus_in_flight"], result["orders_in_flight"], result["on_time_rate"]) == (200_000, 90_000, 0.95)
    assert result["eta_slips"] == 3 and result["at"] == "2026-11-11T10:00:05Z"
    assert result["incidents_by_tier"] == {"P1": 1} and result["alerts_by_tier"] == {"P1": 1}
    assert result["open_incidents"] == 1 == result["open_alerts"]


def test_skus_in_flight_fall_back_to_the_partition_summaries() -> None:
    partitions = store(
        {
            "partition-0": {"inflight_by_status": {"paid": 3, "linehaul": 4}, "watermark": "2026-11-11T10:00:00+00:00"},
            "partition-1": {"inflight_by_status": {"picked": 5}, "watermark": "2026-11-11T10:01:00+00:00"},
        }
    )
    result, nothing = calls(("kpis", [None, None, None, partitions]), ("kpis", [None, None, None, None]))
    assert result["skus_in_flight"] == 12 and result["late"] is None
    assert result["at"] == "2026-11-11T10:01:00+00:00"
    assert nothing["skus_in_flight"] is None and nothing["open_incidents"] == 0


def test_trend_grows_at_most_one_point_per_step_and_refreshes_the_newest() -> None:
    first = call("appended", None, MS0, {"late": 1}, BOUNDS)
    assert first == {"t": [T0], "v": {"late": [1]}}
    same, refreshed = calls(
        ("appended", [first, MS0 + 5000, {"late": 1}, BOUNDS]), ("appended", [first, MS0 + 5000, {"late": 3}, BOUNDS])
    )
    assert same is None  # nothing new
    assert refreshed["v"]["late"] == [3] and len(refreshed["t"]) == 1
    grown = call("appended", refreshed, MS0 + 20_000, {"late": 4, "stalled": 2}, BOUNDS)
    assert grown["v"] == {"late": [3, 4], "stalled": [None, 2]}
    assert calls(("recent", [grown, "stalled"]), ("recent", [grown, "late"])) == [[2], [3, 4]]


def test_trend_is_bounded_and_reports_change_over_minutes() -> None:
    grow = (
        f"(() => {{ let t = null; for (let m = 0; m < {trends.MAX_SAMPLES + 20}; m++) "
        f"t = v.appended(t, {MS0} + m * 60000, {{at_risk: m}}, {json.dumps(BOUNDS)}); return t; }})()"
    )
    trend = evaluate(grow)
    assert len(trend["t"]) == trends.MAX_SAMPLES == len(trend["v"]["at_risk"])
    assert calls(
        ("changeSince", [trend, "at_risk", 10]),
        ("changeSince", [trend, "missing", 10]),
        ("changeSince", [trends.empty(), "at_risk", 10]),
    ) == [10, None, None]


def test_kpi_values_and_deltas_are_formatted_and_red_when_they_move_the_bad_way() -> None:
    table = i18n.table()
    minutes = kpis_panel.DELTA_MINUTES
    assert calls(
        ("formatDelta", ["late", 12, True, minutes, "en", table]),
        ("formatDelta", ["on_time_rate", -0.012, False, minutes, "en", table]),
        ("formatDelta", ["skus_in_flight", 5, None, minutes, "zh-CN", table]),
        ("formatValue", ["on_time_rate", 0.9567]),
        ("formatValue", ["late", 12345]),
        ("formatValue", ["late", None]),
    ) == [
        ["▲ 12 vs 10 min ago", "kpi-delta kpi-bad"],
        ["▼ 1.2 pt vs 10 min ago", "kpi-delta kpi-bad"],
        ["▲ 5 " + i18n.label("zh-CN", "kpi.vs_earlier", minutes=minutes), "kpi-delta kpi-neutral"],
        "95.7%",
        "12,345",
        "–",
    ]
    assert call("format", "{n:,} items, {x}", {"n": 12345, "x": "ok"}) == "12,345 items, ok"


def test_hexagons_get_new_values_and_keep_their_places_until_a_cell_appears() -> None:
    trace = {"name": "hexes", "locations": ["c1", "c2"], "customdata": [[1, 0, 0, 0, "浙江"], [1, 0, 0, 0, "Vietnam"]]}
    heat = store(
        {
            "c1": {"cell": "c1", "skus": 8, "at_risk": 1, "late": 1, "stalled": 0},
            "c2": {"cell": "c2", "skus": 3, "late": 9},
        }
    )
    values, rolled_up, key, same, grown = calls(
        ("hexValues", [trace, heat]),
        ("hexValues", [trace, store({"c1": {"skus": 1}})]),
        ("cellsKey", [heat]),
        ("cellsKey", [store({"c2": {}, "c1": {"skus": 5}})]),
        ("cellsKey", [store({"c1": {}, "c2": {}, "c3": {}})]),
    )
    assert values == {"z": [0.25, 1], "customdata": [[8, 1, 1, 0, "浙江"], [3, 0, 9, 0, "Vietnam"]]}
    assert rolled_up is None  # c2 is not an item itself: the server draws it
    assert key == same != grown


def test_coverage_counts_what_the_map_cannot_show() -> None:
    heat = store({"in": {"skus": 10, "late": 2}, "away": {"skus": 5, "at_risk": 3}, "other-res": {"late": 50}})
    kpis = store({"national": {"at_risk": 3, "late": 7, "stalled": 1}})
    found = call("coverage", heat, kpis, {"cells": ["in", "away"], "outside": ["away"]})
    assert found == {"outside": 3, "unplaced": 6}


def test_the_badge_shows_the_moving_seq_and_who_is_signed_in() -> None:
    table = i18n.table()
    status = {"state": "open", "user": "alice", "role": "manager", "seq": 5}
    (text, css), user, (denied, _) = calls(
        ("badge", [status, "en", 42, table]),
        ("userText", [status, "en", table]),
        ("badge", [{"state": "closed", "code": 4401}, "zh-CN", None, table]),
    )
    assert text == f"● {i18n.label('en', 'live.open')} · seq 42" and css == "live-badge live-open"
    assert user == f"{i18n.label('en', 'user.signed_in_as')} alice · {i18n.label('en', 'role.manager')}"
    assert denied == i18n.label("zh-CN", "live.denied")
