"""Data-quality history for the war-room: the missing-scan rate and the deliveries away from
their stop, from InfluxDB (pure query builders and frame reducers; the query itself runs
through the war-room's one InfluxDB client, :class:`dashboard.warroom.history.InfluxHistory`).

Series read (written by the worker):

* ``missing_scans`` (``stream/core/aggregates.py``): per minute, tags ``source``, ``node``,
  ``device``, ``partition``; fields ``scans`` and ``missing``. Rate = missing / (missing + scans).
* ``delivery_distance`` (``stream/stages/geo_stage.py``): one point per checked delivery,
  tags ``source``, ``courier``, ``station``, ``partition``; fields ``distance_m``,
  ``limit_m``, ``away`` (1 when farther than the limit).

The staff API ``GET /api/v1/data-quality`` (:mod:`dashboard.gateway.data_quality_api`) answers
from the same queries and frames as the war-room panel.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, Protocol

import pandas as pd

from dashboard.warroom.history import TimeWindow

MISSING_SCANS = "missing_scans"
DELIVERY_DISTANCE = "delivery_distance"

ScanDimension = Literal["source", "node", "device"]
SCAN_DIMENSIONS: tuple[ScanDimension, ...] = ("source", "node", "device")
StopDimension = Literal["courier", "station"]
STOP_DIMENSIONS: tuple[StopDimension, ...] = ("courier", "station")
#: Rows shown per table (worst first).
TOP = 12
UNKNOWN = "unknown"


class QuerySource(Protocol):
    def query(self, influxql: str) -> pd.DataFrame: ...


def _instant(moment: datetime) -> str:
    """RFC 3339 in UTC, with the fraction only when there is one (API bounds are exact)."""
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return moment.astimezone(UTC).strftime(pattern)


def _where(window: TimeWindow | None) -> str:
    if window is None:
        return ""
    return f" WHERE time >= '{_instant(window.start)}' AND time < '{_instant(window.end)}'"


def _grouped(
    select: str, measurement: str, window: TimeWindow | None, by: str, allowed: tuple[str, ...], what: str
) -> str:
    """``SELECT <select> FROM <measurement>`` in ``window`` grouped by the tag ``by``, one of ``allowed``."""
    if by not in allowed:
        raise ValueError(f"cannot break {what} down by {by!r}; choose one of {allowed}")
    return f'SELECT {select} FROM "{measurement}"{_where(window)} GROUP BY "{by}"'


def missing_scans_query(window: TimeWindow | None, by: ScanDimension) -> str:
    select = 'sum("scans") AS "scans", sum("missing") AS "missing"'
    return _grouped(select, MISSING_SCANS, window, by, SCAN_DIMENSIONS, "missing scans")


def away_query(window: TimeWindow | None, by: StopDimension) -> str:
    select = 'count("distance_m") AS "delivered", sum("away") AS "away"'
    return _grouped(select, DELIVERY_DISTANCE, window, by, STOP_DIMENSIONS, "deliveries")


def limits_query(window: TimeWindow | None, by: StopDimension) -> str:
    """The distance limits the deliveries were judged against (it is configurable)."""
    select = 'min("limit_m") AS "limit_min", max("limit_m") AS "limit_max"'
    return _grouped(select, DELIVERY_DISTANCE, window, by, STOP_DIMENSIONS, "deliveries")


def _tagged(raw: pd.DataFrame, by: str) -> pd.DataFrame:
    """``raw`` with the group tag filled in: rows without one (or an empty one) are ``unknown``."""
    frame = raw.assign(**{by: raw.get(by, UNKNOWN)}).fillna({by: UNKNOWN})
    frame[by] = frame[by].replace("", UNKNOWN)
    return frame


def missing_scans_frame(raw: pd.DataFrame, by: ScanDimension) -> pd.DataFrame:
    """``<by>, scans, missing, rate``, highest rate first (``rate`` = missing / expected scans)."""
    columns = [by, "scans", "missing", "rate"]
    if raw.empty or "scans" not in raw:
        return pd.DataFrame({c: [] for c in columns})
    out = _tagged(raw, by).groupby(by, as_index=False)[["scans", "missing"]].sum()
    expected = out["scans"] + out["missing"]
    out = out[expected > 0]
    out["rate"] = out["missing"] / (out["scans"] + out["missing"])
    return out[columns].sort_values(["rate", "missing", by], ascending=[False, False, True], ignore_index=True)


def away_frame(raw: pd.DataFrame, by: StopDimension) -> pd.DataFrame:
    """``<by>, delivered, away, away_rate``, most deliveries away first."""
    columns = [by, "delivered", "away", "away_rate"]
    if raw.empty or "delivered" not in raw:
        return pd.DataFrame({c: [] for c in columns})
    out = _tagged(raw, by).groupby(by, as_index=False)[["delivered", "away"]].sum()
    out = out[out["delivered"] > 0]
    out["away_rate"] = out["away"] / out["delivered"]
    return out[columns].sort_values(["away", "away_rate", by], ascending=[False, False, True], ignore_index=True)


def limits_frame(raw: pd.DataFrame, by: StopDimension) -> pd.DataFrame:
    """``<by>, limit_min, limit_max``: the limits used per group (equal unless the limit changed)."""
    columns = [by, "limit_min", "limit_max"]
    if raw.empty or "limit_min" not in raw:
        return pd.DataFrame({c: [] for c in columns})
    out = (
        _tagged(raw, by).groupby(by, as_index=False).agg(limit_min=("limit_min", "min"), limit_max=("limit_max", "max"))
    )
    return out[columns]


def missing_scans(source: QuerySource, window: TimeWindow | None, by: ScanDimension) -> pd.DataFrame:
    return missing_scans_frame(source.query(missing_scans_query(window, by)), by)


def deliveries_away(source: QuerySource, window: TimeWindow | None, by: StopDimension) -> pd.DataFrame:
    return away_frame(source.query(away_query(window, by)), by)


def away_limits(source: QuerySource, window: TimeWindow | None, by: StopDimension) -> pd.DataFrame:
    return limits_frame(source.query(limits_query(window, by)), by)
