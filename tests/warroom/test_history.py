"""History: InfluxQL built from a time window, answers shaped into frames; and the real
thing against the session's influxd (points written in the worker's line protocol)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import pytest

from dashboard.warroom import history
from dashboard.warroom.history import HistoryError, InfluxHistory, TimeWindow
from orderradar.devstack.influx import LocalInflux, create_database
from stream.sinks.line_protocol import line

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
MIN = 60 * 1_000_000_000


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000


def test_window_picks_a_bucket_with_a_bounded_number_of_points() -> None:
    assert TimeWindow.last(timedelta(hours=1), T0).bucket == timedelta(minutes=1)
    assert TimeWindow.last(timedelta(hours=24), T0).bucket == timedelta(minutes=15)
    assert TimeWindow.last(timedelta(days=7), T0).bucket == timedelta(hours=1)
    with pytest.raises(ValueError, match="empty time window"):
        TimeWindow(T0, T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        TimeWindow(T0.replace(tzinfo=None), T0.replace(tzinfo=None) + timedelta(minutes=1))


def test_queries_quote_what_comes_from_users() -> None:
    window = TimeWindow.last(timedelta(hours=1), T0)
    query = history.order_events_query("o-1' OR '1'='1", window)
    assert "\"order_id\" = 'o-1\\' OR \\'1\\'=\\'1'" in query
    assert "time >= '2026-11-11T01:00:00Z' AND time < '2026-11-11T02:00:00Z'" in query
    assert 'GROUP BY time(60s), "partition", "state", "warehouse"' in history.delay_query(window, "warehouse")
    with pytest.raises(ValueError, match="cannot break delay rate down"):
        history.delay_query(window, "device_id")  # type: ignore[arg-type]


def test_errors_in_answers_are_raised_with_the_query() -> None:
    with pytest.raises(HistoryError, match="database not found"):
        history.frames_from_response({"results": [{"statement_id": 0, "error": "database not found: x"}]}, "SELECT 1")


def test_gauges_carry_a_quiet_partition_forward() -> None:
    # Partition 1 wrote at 10:00 only; at 10:01 its SKUs are still in flight.
    raw = pd.DataFrame(
        {
            "time": pd.to_datetime([T0, T0, T0 + timedelta(minutes=1)], utc=True),
            "partition": ["0", "1", "0"],
            "skus": [5.0, 7.0, 6.0],
        }
    )
    out = history.inflight_frame(raw)
    assert out["skus"].tolist() == [12.0, 13.0]


def test_delay_rate_counts_at_risk_late_and_stalled() -> None:
    raw = pd.DataFrame(
        {
            "time": pd.to_datetime([T0] * 4, utc=True),
            "partition": ["0"] * 4,
            "state": ["on_track", "at_risk", "late", "exception"],
            "region": ["330000"] * 4,
            "skus": [70.0, 10.0, 10.0, 10.0],
        }
    )
    out = history.delay_frame(raw, "region")
    assert out[["skus", "delayed"]].values.tolist() == [[100.0, 20.0]]
    assert out["delay_rate"].tolist() == [pytest.approx(0.2)]


@pytest.fixture
def influx_history(influx: LocalInflux) -> Iterator[InfluxHistory]:
    db = f"h_{uuid.uuid4().hex[:10]}"
    create_database(influx.url, db)
    source = InfluxHistory(influx.url, db, timeout_s=10)
    lines = [
        line("throughput", {"partition": "0", "status": "paid", "region": "330000"}, {"count": 30}, ns(T0)),
        line("throughput", {"partition": "1", "status": "paid", "region": "110000"}, {"count": 12}, ns(T0)),
        line("throughput", {"partition": "0", "status": "packed", "region": "330000"}, {"count": 6}, ns(T0) + MIN),
        line("dwell", {"partition": "0", "node": "HZ-1"}, {"count": 2, "total_s": 1200.0, "mean_s": 600.0}, ns(T0)),
        line("dwell", {"partition": "1", "node": "HZ-1"}, {"count": 2, "total_s": 2400.0, "mean_s": 1200.0}, ns(T0)),
        line("inflight", {"partition": "0", "status": "paid", "region": "330000"}, {"count": 40}, ns(T0)),
        line("delays", {"partition": "0", "state": "late", "carrier": "SF"}, {"skus": 5}, ns(T0)),
        line("delays", {"partition": "0", "state": "on_track", "carrier": "SF"}, {"skus": 15}, ns(T0)),
        line(
            "sku_events",
            {"status": "linehaul", "region": "330000"},
            {
                "event_id": "e1",
                "order_id": "o-1",
                "sku": "A",
                "lat": 30.2,
                "lon": 120.1,
                "late": False,
                "illegal": False,
                "source": "tms",
            },
            ns(T0) + 5,
        ),
        line(
            "sku_events",
            {"status": "paid", "region": "110000"},
            {
                "event_id": "e2",
                "order_id": "o-2",
                "sku": "B",
                "lat": 39.9,
                "lon": 116.4,
                "late": True,
                "illegal": False,
                "source": "oms",
            },
            ns(T0) + 7,
        ),
    ]
    response = httpx.post(f"{influx.url}/write", params={"db": db}, content="\n".join(lines).encode(), timeout=10)
    assert response.status_code == 204, response.text
    yield source
    source.close()


@pytest.mark.integration
def test_history_reads_the_worker_series(influx_history: InfluxHistory) -> None:
    window = TimeWindow(T0 - timedelta(minutes=5), T0 + timedelta(minutes=5))
    throughput = influx_history.throughput(window)
    assert throughput.groupby("status")["events"].sum().to_dict() == {"paid": 42.0, "packed": 6.0}
    dwell = influx_history.dwell(window)
    assert dwell[["node", "count", "dwell_s"]].values.tolist() == [["HZ-1", 4, 900.0]]
    assert influx_history.inflight(window)["skus"].tolist() == [40.0]
    delays = influx_history.delay_rate(window, "carrier")
    assert delays[["carrier", "skus", "delay_rate"]].values.tolist() == [["SF", 20.0, 0.25]]


@pytest.mark.integration
def test_history_finds_events_by_area_and_by_order(influx_history: InfluxHistory) -> None:
    window = TimeWindow(T0 - timedelta(minutes=5), T0 + timedelta(minutes=5))
    near_hangzhou = influx_history.positions((119.5, 29.5, 121.0, 31.0), window)
    assert near_hangzhou["order_id"].tolist() == ["o-1"]
    lineage = influx_history.order_events("o-2", window)
    assert lineage[["event_id", "sku", "status", "late"]].values.tolist() == [["e2", "B", "paid", True]]
    assert influx_history.order_events("o-3", window).empty


@pytest.mark.integration
def test_history_errors_name_the_problem(influx: LocalInflux) -> None:
    window = TimeWindow.last(timedelta(hours=1), T0)
    with (
        InfluxHistory(influx.url, "no_such_db", timeout_s=5) as missing,
        pytest.raises(HistoryError, match="database not found"),
    ):
        missing.throughput(window)
    with (
        InfluxHistory("http://127.0.0.1:9", "x", timeout_s=1) as unreachable,
        pytest.raises(HistoryError, match="unreachable"),
    ):
        unreachable.dwell(window)
