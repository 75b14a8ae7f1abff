"""``GET /api/v1/data-quality``: deliveries away from their stop and missing scans (staff).

Query parameters (all optional), validated like ``/api/v1/delivery-stats``:

* ``since``, ``until``: ISO 8601 instants (with a UTC offset, or ``Z``) or dates (UTC
  midnight); the range is half-open ``[since, until)`` in event time. Default: the 7 days
  before now.
* ``by``: ``courier`` or ``station`` (deliveries away from the stop), ``source``, ``node`` or
  ``device`` (missing scans): one group per value, worst first (points without one form the
  group ``null``). Without it, the totals of both.

Figures (the worker writes the points; the war-room panel "Data quality" reads the same
queries and frames, :mod:`dashboard.warroom.quality_history`):

* ``delivered``: deliveries with a courier fix and a stop (``delivery_distance`` points);
  ``away``: those whose fix is farther than the limit from the stop; ``away_rate`` =
  away / delivered; ``limit_m``: the limit they were judged against (``data_quality.delivered_away_m``
  in config/sla.yaml; ``null`` with ``limits_m: [min, max]`` when it changed in the range).
* ``scans``: events applied as legal steps; ``missing``: the ladder stages they skipped (not
  scanned); ``missing_rate`` = missing / (missing + scans). Counted per event-time minute, so
  the range is exact at whole minutes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dashboard.gateway.delivery_stats import (
    QueryRunner,
    StatsRequestError,
    _iso,
    history_runner,
    parse_range,
)
from dashboard.gateway.responses import error_response, json_response
from dashboard.gateway.sessions import authorise, gateway_of
from dashboard.gateway.staff import Permission
from dashboard.warroom.history import HistoryError, TimeWindow
from dashboard.warroom.quality_history import (
    SCAN_DIMENSIONS,
    STOP_DIMENSIONS,
    UNKNOWN,
    ScanDimension,
    StopDimension,
    away_limits,
    deliveries_away,
    missing_scans,
)

log = logging.getLogger(__name__)

QualityBy = Literal["courier", "station", "source", "node", "device"]
QUALITY_BY: tuple[QualityBy, ...] = (*STOP_DIMENSIONS, *SCAN_DIMENSIONS)
#: (total, groups) of an answer.
Rows = tuple[dict[str, Any], list[dict[str, Any]]]


@dataclass(frozen=True)
class QualityQuery:
    since: datetime
    until: datetime
    by: QualityBy | None = None

    @property
    def window(self) -> TimeWindow:
        return TimeWindow(self.since, self.until)


def parse_query(params: dict[str, str], now: datetime) -> QualityQuery:
    since, until, by = parse_range(params, now, ("since", "until", "by"), tuple(QUALITY_BY))
    return QualityQuery(since, until, by)  # type: ignore[arg-type]  # by checked above


# -- shaping (pure) -----------------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _group(value: Any) -> str | None:
    return None if value == UNKNOWN else str(value)


def _limit(low: float, high: float) -> dict[str, Any]:
    if pd.isna(low) or pd.isna(high):
        return {"limit_m": None}
    if low == high:
        return {"limit_m": float(low)}
    return {"limit_m": None, "limits_m": [float(low), float(high)]}


def away_rows(away: pd.DataFrame, limits: pd.DataFrame, by: StopDimension) -> Rows:
    """(total, groups) from :func:`quality_history.away_frame` and :func:`~.limits_frame`."""
    bounds = {row[by]: (row["limit_min"], row["limit_max"]) for row in limits.to_dict("records")}
    groups = []
    for row in away.to_dict("records"):
        delivered, n_away = int(row["delivered"]), int(row["away"])
        low, high = bounds.get(row[by], (float("nan"), float("nan")))
        groups.append(
            {
                by: _group(row[by]),
                "delivered": delivered,
                "away": n_away,
                "away_rate": _rate(n_away, delivered),
                **_limit(low, high),
            }
        )
    delivered, n_away = sum(g["delivered"] for g in groups), sum(g["away"] for g in groups)
    low = limits["limit_min"].min() if not limits.empty else float("nan")
    high = limits["limit_max"].max() if not limits.empty else float("nan")
    total = {"delivered": delivered, "away": n_away, "away_rate": _rate(n_away, delivered), **_limit(low, high)}
    return total, groups


def scan_rows(frame: pd.DataFrame, by: ScanDimension) -> Rows:
    """(total, groups) from :func:`quality_history.missing_scans_frame`."""
    groups: list[dict[str, Any]] = []
    total_scans = total_missing = 0
    for row in frame.to_dict("records"):
        scans, missing = int(row["scans"]), int(row["missing"])
        total_scans, total_missing = total_scans + scans, total_missing + missing
        groups.append(
            {by: _group(row[by]), "scans": scans, "missing": missing, "missing_rate": _rate(missing, scans + missing)}
        )
    rate = _rate(total_missing, total_scans + total_missing)
    return {"scans": total_scans, "missing": total_missing, "missing_rate": rate}, groups


def data_quality(runner: QueryRunner, q: QualityQuery) -> dict[str, Any]:
    """The API's answer (blocking: runs up to three queries)."""
    window = q.window
    total: dict[str, Any] = {}
    groups: list[dict[str, Any]] = []
    if q.by is None or q.by in STOP_DIMENSIONS:
        stop: StopDimension = q.by if q.by in STOP_DIMENSIONS else "station"
        away_total, away_groups = away_rows(
            deliveries_away(runner, window, stop), away_limits(runner, window, stop), stop
        )
        total.update(away_total)
        groups = away_groups if q.by else []
    if q.by is None or q.by in SCAN_DIMENSIONS:
        scan: ScanDimension = q.by if q.by in SCAN_DIMENSIONS else "source"
        scan_total, scan_groups = scan_rows(missing_scans(runner, window, scan), scan)
        total.update(scan_total)
        groups = scan_groups if q.by else groups
    return {"since": _iso(q.since), "until": _iso(q.until), "by": q.by, "total": total, "groups": groups}


# -- the route ----------------------------------------------------------------------------------


async def get_data_quality(request: Request) -> Response:
    denied = authorise(request, Permission.VIEW)
    if isinstance(denied, Response):
        return denied
    try:
        q = parse_query(dict(request.query_params), gateway_of(request).clock())
    except StatsRequestError as exc:
        return error_response(400, "bad_request", str(exc))
    try:
        body = await run_in_threadpool(data_quality, history_runner(request), q)
    except HistoryError as exc:
        log.warning("data quality unavailable: %s", exc)
        return error_response(503, "history_unavailable", "InfluxDB did not answer the data-quality figures")
    return json_response(body)


__all__ = ["QUALITY_BY", "QualityQuery", "data_quality", "get_data_quality", "parse_query"]
