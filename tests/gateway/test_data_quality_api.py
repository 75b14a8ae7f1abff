"""``/api/v1/data-quality`` (pure parts): parameters and the shape of the answer.

The figures themselves are checked on the live stack against the CSVs
(tests/acceptance/test_real_exports.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from dashboard.gateway import data_quality_api as api
from dashboard.gateway.delivery_stats import StatsRequestError
from dashboard.warroom import quality_history as qh

NOW = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


def test_parameters_are_validated_like_delivery_stats() -> None:
    q = api.parse_query({"since": "2018-01-01T00:00:00.250-03:00", "by": "device"}, NOW)
    assert (q.since, q.until, q.by) == (datetime(2018, 1, 1, 3, 0, 0, 250_000, tzinfo=UTC), NOW, "device")
    # fractions of a second stay in the query (the range is exact)
    assert "time >= '2018-01-01T03:00:00.250000Z'" in qh.missing_scans_query(q.window, "device")
    for params, named in (
        ({"by": "region"}, "by"),
        ({"as_of": "2018-01-01"}, "as_of"),
        ({"since": "2018-01-01T00:00:00"}, "since"),
        ({"since": "2027-01-01"}, "since"),
    ):
        with pytest.raises(StatsRequestError, match=named):
            api.parse_query(params, NOW)


def test_groups_carry_counts_rates_and_the_limit_used() -> None:
    away = qh.away_frame(
        pd.DataFrame({"station": ["s1", "", "s2"], "delivered": [10.0, 4.0, 5.0], "away": [1.0, 2.0, 0.0]}), "station"
    )
    limits = qh.limits_frame(
        pd.DataFrame(
            {"station": ["s1", "", "s2"], "limit_min": [500.0, 300.0, 500.0], "limit_max": [500.0, 500.0, 500.0]}
        ),
        "station",
    )
    total, groups = api.away_rows(away, limits, "station")
    assert groups[0] == {
        "station": None,
        "delivered": 4,
        "away": 2,
        "away_rate": 0.5,
        "limit_m": None,
        "limits_m": [300.0, 500.0],
    }
    assert groups[1] == {"station": "s1", "delivered": 10, "away": 1, "away_rate": 0.1, "limit_m": 500.0}
    assert total == {"delivered": 19, "away": 3, "away_rate": 0.1579, "limit_m": None, "limits_m": [300.0, 500.0]}
    scans = qh.missing_scans_frame(pd.DataFrame({"source": ["olist"], "scans": [3.0], "missing": [4.0]}), "source")
    assert api.scan_rows(scans, "source") == (
        {"scans": 3, "missing": 4, "missing_rate": 0.5714},
        [{"source": "olist", "scans": 3, "missing": 4, "missing_rate": 0.5714}],
    )
    assert api.scan_rows(qh.missing_scans_frame(pd.DataFrame(), "node"), "node") == (
        {"scans": 0, "missing": 0, "missing_rate": None},
        [],
    )
