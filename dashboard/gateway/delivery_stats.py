"""``GET /api/v1/delivery-stats``: delivered, on time and late orders, from InfluxDB (staff).

Query parameters (all optional):

* ``since``, ``until``: ISO 8601 instants (with a UTC offset, or ``Z``) or dates (UTC
  midnight); the range is half-open ``[since, until)``. Default: the 7 days before now.
* ``by``: ``region``, ``channel``, ``carrier`` or ``warehouse``: one group per value (orders
  without one form the group ``null``). Without it, only the total.
* ``as_of``: the instant ``open_past_promise`` is judged at. Default: the earliest of
  ``until``, now, and the newest event time of the orders counted in the range (replayed
  history is judged at the end of its own data, not at today's date, even while live
  traffic flows).

Which orders are counted (definitions, :mod:`stream.core.outcomes` writes the points):

* an order is **delivered** when each of its lines was delivered (or cancelled / returned)
  and at least one was delivered; its delivery time is when its last line was delivered.
  Delivered orders count in the range when their **delivery time** is in ``[since, until)``.
* an order still **open** (a line in flight) counts in the range when its **promise
  deadline** is in ``[since, until)``; it is ``open_past_promise`` when that deadline is
  before ``as_of``. Open orders without a promise, and cancelled orders, are not counted.
* the promise deadline comes from ``promised_by`` and the SLA promise rule: a date-only
  promise (rule with ``end_of_day``) ends at the end of that day in the rule's time zone.
  ``late``: delivered at or after the deadline; ``on_time``: delivered before it;
  ``late_7d_or_more``: delivered on a calendar day 7 or more days after the promised day;
  ``no_promise``: delivered without a promise (neither on time nor late).
  ``on_time_rate`` = on_time / (on_time + late), ``null`` when both are 0.

Range boundaries are exact to the millisecond (points sit at their anchor's millisecond).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dashboard.gateway.responses import error_response, json_response
from dashboard.gateway.sessions import authorise, gateway_of
from dashboard.gateway.staff import Permission
from dashboard.warroom.history import HistoryError, InfluxHistory
from stream.core.outcomes import ORDER_OUTCOMES

log = logging.getLogger(__name__)

GroupBy = Literal["region", "channel", "carrier", "warehouse"]
GROUP_BY: tuple[GroupBy, ...] = ("region", "channel", "carrier", "warehouse")
DEFAULT_SPAN = timedelta(days=7)
#: Counters summed per group (response names); ``late_7d_or_more`` is the point's ``late_7d``.
COUNTS = ("delivered", "on_time", "late", "late_7d_or_more", "no_promise", "open_past_promise")


@runtime_checkable
class QueryRunner(Protocol):
    """An InfluxQL runner (``dashboard.warroom.history.InfluxHistory``, the one client)."""

    def query(self, influxql: str) -> pd.DataFrame: ...


class StatsRequestError(ValueError):
    """A query parameter the API cannot use; the message names it."""


@dataclass(frozen=True)
class StatsQuery:
    since: datetime
    until: datetime
    by: GroupBy | None = None
    as_of: datetime | None = None


# -- parameters (pure) --------------------------------------------------------------------------


def parse_instant(name: str, text: str) -> datetime:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise StatsRequestError(f"{name}: {text!r} is not an ISO 8601 date or time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise StatsRequestError(f"{name}: {text!r} needs a UTC offset, e.g. 2018-01-01T00:00:00Z")
    return moment.astimezone(UTC)


def parse_range(
    params: dict[str, str], now: datetime, allowed: tuple[str, ...], choices: tuple[str, ...]
) -> tuple[datetime, datetime, str | None]:
    """``since``, ``until`` (default: the last :data:`DEFAULT_SPAN` up to ``now``) and ``by``
    (one of ``choices``) of a statistics request; shared by every staff statistics endpoint."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise StatsRequestError(f"unknown parameter(s) {', '.join(unknown)} (use {', '.join(allowed)})")
    until = parse_instant("until", params["until"]) if params.get("until") else now
    since = parse_instant("since", params["since"]) if params.get("since") else until - DEFAULT_SPAN
    if since >= until:
        raise StatsRequestError(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
    by = params.get("by") or None
    if by is not None and by not in choices:
        raise StatsRequestError(f"by: {by!r} is not one of {', '.join(choices)}")
    return since, until, by


def parse_query(params: dict[str, str], now: datetime) -> StatsQuery:
    since, until, by = parse_range(params, now, ("since", "until", "by", "as_of"), tuple(GROUP_BY))
    as_of = parse_instant("as_of", params["as_of"]) if params.get("as_of") else None
    return StatsQuery(since, until, by, as_of)  # type: ignore[arg-type]  # by checked above


# -- InfluxQL (pure) ----------------------------------------------------------------------------


def _ns(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _group(by: GroupBy | None) -> str:
    return f' GROUP BY "{by}"' if by else ""


def delivered_query(q: StatsQuery) -> str:
    return (
        f'SELECT sum("delivered") AS "delivered", sum("on_time") AS "on_time", sum("late") AS "late", '
        f'sum("late_7d") AS "late_7d_or_more", sum("no_promise") AS "no_promise" FROM "{ORDER_OUTCOMES}" '
        f"WHERE time >= {_ns(q.since)} AND time < {_ns(q.until)}{_group(q.by)}"
    )


def open_query(q: StatsQuery, as_of: datetime) -> str | None:
    end = min(q.until, as_of)
    if end <= q.since:
        return None
    return (
        f'SELECT sum("open") AS "open_past_promise" FROM "{ORDER_OUTCOMES}" '
        f"WHERE time >= {_ns(q.since)} AND time < {_ns(end)}{_group(q.by)}"
    )


def newest_event_query(q: StatsQuery) -> str:
    return (
        f'SELECT max("last_event_ms") AS "newest" FROM "{ORDER_OUTCOMES}" '
        f"WHERE time >= {_ns(q.since)} AND time < {_ns(q.until)}"
    )


def _rate(on_time: int, late: int) -> float | None:
    return round(on_time / (on_time + late), 4) if on_time + late else None


def _row(counts: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {name: int(counts.get(name, 0)) for name in COUNTS}
    out["on_time_rate"] = _rate(out["on_time"], out["late"])
    return out


def shape(frames: Sequence[pd.DataFrame], by: GroupBy | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(total, groups) from the answers of :func:`delivered_query` and :func:`open_query`."""
    groups: dict[str | None, dict[str, int]] = {}
    for frame in frames:
        for record in frame.to_dict("records"):
            key = record.get(by) if by else None
            key = key if isinstance(key, str) and key else None
            counts = groups.setdefault(key, {})
            for name in COUNTS:
                value = record.get(name)
                if value is not None and not pd.isna(value):
                    counts[name] = counts.get(name, 0) + int(value)
    total: dict[str, int] = {}
    for counts in groups.values():
        for name, value in counts.items():
            total[name] = total.get(name, 0) + value
    if by is None:
        return _row(total), []
    rows = [{by: key, **_row(counts)} for key, counts in groups.items()]
    rows.sort(key=lambda r: (-r["delivered"], -r["open_past_promise"], str(r[by] or "")))
    return _row(total), rows


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def delivery_stats(runner: QueryRunner, q: StatsQuery, now: datetime) -> dict[str, Any]:
    """The API's answer (blocking: runs up to three queries)."""
    as_of = q.as_of
    if as_of is None:
        as_of = min(q.until, now)
        newest = runner.query(newest_event_query(q))
        if not newest.empty and "newest" in newest and not pd.isna(newest["newest"].iloc[0]):
            as_of = min(as_of, datetime.fromtimestamp(int(newest["newest"].iloc[0]) / 1000, UTC))
    frames = [runner.query(delivered_query(q))]
    opened = open_query(q, as_of)
    if opened is not None:
        frames.append(runner.query(opened))
    total, groups = shape(frames, q.by)
    return {
        "since": _iso(q.since),
        "until": _iso(q.until),
        "as_of": _iso(as_of),
        "by": q.by,
        "total": total,
        "groups": groups,
    }


# -- the route ----------------------------------------------------------------------------------


def history_runner(request: Request) -> QueryRunner:
    """The web process's InfluxDB client (``app.state.history``, shared with the war-room);
    built once from the settings when the app was assembled without one."""
    state = request.app.state
    runner = getattr(state, "history", None)
    if runner is None:
        runner = state.history = InfluxHistory.from_settings(gateway_of(request).settings)
    return runner


async def get_delivery_stats(request: Request) -> Response:
    denied = authorise(request, Permission.VIEW)
    if isinstance(denied, Response):
        return denied
    now = gateway_of(request).clock()
    try:
        q = parse_query(dict(request.query_params), now)
    except StatsRequestError as exc:
        return error_response(400, "bad_request", str(exc))
    try:
        body = await run_in_threadpool(delivery_stats, history_runner(request), q, now)
    except HistoryError as exc:
        log.warning("delivery stats unavailable: %s", exc)
        return error_response(503, "history_unavailable", "InfluxDB did not answer the delivery statistics")
    return json_response(body)


__all__ = [
    "GROUP_BY",
    "QueryRunner",
    "StatsQuery",
    "StatsRequestError",
    "delivery_stats",
    "get_delivery_stats",
    "parse_query",
    "shape",
]
