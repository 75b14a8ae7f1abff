"""Data-quality history (pure): queries and the frames the war-room panel shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from dashboard.warroom import quality_history as qh
from dashboard.warroom.history import TimeWindow
from dashboard.warroom.panels.data_quality import table

T0 = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


def test_queries_group_by_the_chosen_dimension_over_a_window_or_all_time() -> None:
    window = TimeWindow.last(timedelta(hours=24), T0)
    assert qh.missing_scans_query(window, "device") == (
        'SELECT sum("scans") AS "scans", sum("missing") AS "missing" FROM "missing_scans" '
        "WHERE time >= '2026-11-10T02:00:00Z' AND time < '2026-11-11T02:00:00Z' GROUP BY \"device\""
    )
    assert qh.away_query(None, "station") == (
        'SELECT count("distance_m") AS "delivered", sum("away") AS "away" FROM "delivery_distance" GROUP BY "station"'
    )
    with pytest.raises(ValueError, match="cannot break missing scans down"):
        qh.missing_scans_query(window, "region")  # type: ignore[arg-type]


def test_rates_worst_first_and_untagged_rows_as_unknown() -> None:
    raw = pd.DataFrame(
        {"time": [0, 0, 0], "node": ["hub-a", "", "hub-b"], "scans": [9.0, 4.0, 3.0], "missing": [1.0, 0.0, 3.0]}
    )
    out = qh.missing_scans_frame(raw, "node")
    assert out["node"].tolist() == ["hub-b", "hub-a", "unknown"]
    assert out["rate"].tolist() == [0.5, 0.1, 0.0]
    away = qh.away_frame(
        pd.DataFrame({"time": [0, 0], "courier": ["c1", "c2"], "delivered": [10.0, 4.0], "away": [1.0, 2.0]}), "courier"
    )
    assert away["courier"].tolist() == ["c2", "c1"] and away["away_rate"].tolist() == [0.5, 0.1]
    rendered = str(
        table(away, [("courier", "dq.by.courier"), ("away", "dq.away_count"), ("away_rate", "dq.rate")], "en")
    )
    assert "50.0%" in rendered and "Courier" in rendered
    assert qh.missing_scans_frame(pd.DataFrame({"time": []}), "source").empty
