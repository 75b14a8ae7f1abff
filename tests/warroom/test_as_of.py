"""The war-room as of a past minute, from InfluxDB rows (pure parts: rows to store items,
query text, the time control's steps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from dashboard.warroom import as_of, live
from dashboard.warroom.history import as_of_queries
from dashboard.warroom.panels import time_travel

M = datetime(2026, 12, 7, 6, 30, tzinfo=UTC)


def t(minutes: float) -> pd.Timestamp:
    return pd.Timestamp(M + timedelta(minutes=minutes))


def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows) if rows else pd.DataFrame({"time": []})


def cell_row(minutes: float, partition: str, cell: str, region: str, *counts: int) -> dict[str, object]:
    """A heatmap point of one resolution-3 cell; ``counts``: skus, orders, at_risk, late, stalled."""
    names = ("skus", "orders", "at_risk", "late", "stalled")
    return {"time": t(minutes), "partition": partition, "h3": cell, "res": "3", "region": region} | dict(
        zip(names, counts, strict=True)
    )


def test_gauges_take_each_partitions_newest_minute_and_drop_silent_partitions() -> None:
    cells = frame(
        [
            # partition 0: an older minute (superseded) and the newest one
            cell_row(-3, "0", "831f1dfffffffff", "330000", 9, 9, 9, 0, 0),
            cell_row(0, "0", "831f1dfffffffff", "330000", 4, 3, 1, 0, 1),
            # partition 1 wrote a minute earlier (a second worker a tick behind): counted
            cell_row(-1, "1", "831f1dfffffffff", "330000", 2, 2, 0, 2, 0),
            # partition 2 fell silent long ago (emptied): not counted
            cell_row(-9, "2", "8331a9fffffffff", "310000", 5, 5, 0, 0, 0),
        ]
    )
    items = as_of.heatmap_items(cells)
    assert items == {
        "831f1dfffffffff": {
            "cell": "831f1dfffffffff",
            "res": 3,
            "region": "330000",
            "skus": 6,
            "orders": 5,
            "at_risk": 1,
            "late": 2,
            "stalled": 1,
        }
    }
    # The live map reads them as it reads the live feed.
    drawn = live.cells_frame({"items": items}, 3)
    assert list(drawn["cell"]) == ["831f1dfffffffff"] and drawn["delay_rate"].iloc[0] == 4 / 6


def test_kpis_from_delay_states_and_orders() -> None:
    delays = frame(
        [
            {"time": t(0), "partition": "0", "state": "on_track", "skus": 6},
            {"time": t(0), "partition": "0", "state": "late", "skus": 1},
            {"time": t(0), "partition": "1", "state": "on_track", "skus": 1},
            {"time": t(0), "partition": "1", "state": "stalled", "skus": 2},
            {"time": t(-2), "partition": "1", "state": "at_risk", "skus": 7},  # superseded
        ]
    )
    orders = frame([{"time": t(0), "partition": "0", "orders": 5}, {"time": t(0), "partition": "1", "orders": 2}])
    item = as_of.kpi_item(delays, orders, M)
    assert item == {
        "skus_in_flight": 10,
        "orders_in_flight": 7,
        "on_time_rate": 0.7,
        "at_risk": 0,
        "late": 1,
        "stalled": 2,
        "at": "2026-12-07T06:30:00Z",
    }
    assert as_of.kpi_item(frame([]), frame([]), M) is None


def test_incidents_and_alerts_as_of_their_newest_events() -> None:
    incidents = frame(
        [
            {
                "time": t(-30),
                "incident_id": "inc-1",
                "kind": "delay",
                "state": "open",
                "event": "incident.opened",
                "title": "Hub HUB-A: 3 stalled",
                "root_cause": "Hub HUB-A",
                "orders": 3,
                "skus": 3,
                "opened_at": "2026-12-07T06:00:00Z",
                "lat": 30.75,
                "lon": 120.76,
            },
            {
                "time": t(-5),
                "incident_id": "inc-1",
                "kind": "delay",
                "state": "open",
                "event": "incident.updated",
                "title": "Hub HUB-A: 8 stalled",
                "root_cause": "Hub HUB-A",
                "orders": 8,
                "skus": 9,
                "opened_at": "2026-12-07T06:00:00Z",
                "lat": 30.75,
                "lon": 120.76,
            },
            {
                "time": t(-20),
                "incident_id": "inc-2",
                "kind": "delay",
                "state": "resolved",
                "event": "incident.resolved",
                "title": "Carrier ZTO",
                "root_cause": "Carrier ZTO",
                "orders": 0,
                "skus": 0,
                "opened_at": None,
                "lat": None,
                "lon": None,
            },
        ]
    )
    alerts = frame(
        [
            {"time": t(-29), "alert_id": "a-1", "event": "fired", "tier": "P3", "incident_ids": "inc-1", "by": None},
            {
                "time": t(-10),
                "alert_id": "a-1",
                "event": "tier_changed",
                "tier": "P1",
                "incident_ids": "inc-1",
                "by": None,
            },
            {"time": t(-8), "alert_id": "a-1", "event": "acked", "tier": None, "incident_ids": "", "by": "lin"},
        ]
    )
    shown = live.incidents({"items": as_of.incident_items(incidents)}, {"items": as_of.alert_items(alerts)})
    assert [(i.incident_id, i.open, i.affected_orders, i.tier, i.owner) for i in shown] == [
        ("inc-1", True, 8, "P1", "lin"),
        ("inc-2", False, 0, "P4", None),
    ]
    assert (shown[0].lat, shown[0].lon, shown[0].root_cause) == (30.75, 120.76, "Hub HUB-A")
    (alert,) = live.alerts({"items": as_of.alert_items(alerts)})
    assert (alert.status, alert.tier, alert.acked_by, alert.open) == ("acked", "P1", "lin", True)


def test_stores_have_every_channel_the_panels_read() -> None:
    rows = as_of.AsOfRows(M, frame([]), frame([]), frame([]), frame([]), frame([]))
    stores = as_of.stores(rows)
    assert set(stores) == set(time_travel.CHANNELS)
    assert all(store == {"seq": None, "items": {}} for store in stores.values())


def test_queries_end_with_the_minute_and_leave_replays_out() -> None:
    cells, delays, orders, incidents, alerts = as_of_queries(M + timedelta(seconds=42))
    assert "time < '2026-12-07T06:31:00Z'" in cells and "time >= '2026-12-07T06:16:00Z'" in cells
    assert "\"replay\" = ''" in delays and "\"replay\" = ''" in orders and "\"replay\" = ''" in incidents
    assert "time >= '2026-12-06T06:31:00Z'" in alerts


def test_time_control_steps_and_bounds() -> None:
    bounds = (100, 200)
    assert time_travel.next_mode(time_travel.SLIDER, 150, bounds, {"at": None}) == 150
    assert time_travel.next_mode(time_travel.EARLIER, None, bounds, {"at": None}) == 199
    assert time_travel.next_mode(time_travel.EARLIER, None, bounds, {"at": 100}) == 100
    assert time_travel.next_mode(time_travel.LATER, None, bounds, {"at": 150}) == 151
    assert time_travel.next_mode(time_travel.LIVE, 150, bounds, {"at": 150}) is None
    assert time_travel.status_text(None, "en", "UTC") == "Showing live data"
    at = int(M.timestamp() // 60)
    assert "14:30" in time_travel.status_text(at, "zh-CN", "Asia/Shanghai")
    assert as_of.slider_marks(at - 60, at, "Asia/Shanghai")[at] == "14:30"
