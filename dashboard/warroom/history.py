"""History for the war-room: InfluxDB 1.x ``/query`` (InfluxQL) to pandas DataFrames.

The only module of the war-room that talks to InfluxDB. The app factory builds one
:class:`InfluxHistory` and hands it to the panels, whose callbacks only call its methods.
Query text comes from pure builders (``*_query``) and answers are shaped by pure functions
(``frames_from_response`` and the ``*_frame`` reducers), all testable without a server.

Series read (written by the worker, see ``stream/core/aggregates.py`` and ``stream/sinks/line_protocol.py``;
each aggregate is tagged with the source ``partition``, so queries sum over partitions):

* ``throughput``: accepted events per minute, tags ``status``, ``region``; field ``count``.
* ``dwell``: time at a node, tag ``node``; fields ``count``, ``total_s``, ``mean_s``.
* ``inflight``: open SKU lines sampled per minute, tags ``status``, ``region``; field ``count``.
* ``sku_events``: one point per accepted event; tags ``status``, ``region``, ``warehouse``,
  ``carrier``, ``channel``, ``source``; fields ``event_id``, ``order_id``, ``sku``, ``qty``,
  ``lat``, ``lon``, ``late`` (arrived out of order), ``illegal``.
* ``delays`` (:data:`DELAYS`): in-flight SKU lines per delay state, sampled per minute like
  ``inflight``; tags ``state`` (on_track, at_risk, late, stalled, exception), ``region``,
  ``carrier``, ``warehouse``; field ``skus``. Delay rate = (at_risk + late + stalled) / all.
* The war-room as of a past minute (:meth:`InfluxHistory.as_of`, shaped by
  :mod:`dashboard.warroom.as_of`): ``delay_cells``, ``delays``, ``delays_orders``,
  ``incidents`` and ``alert_events``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, cast

import httpx
import pandas as pd

from config.client_auth import influx_auth
from config.settings import Settings
from dashboard.warroom.as_of import EVENT_LOOKBACK, GAUGE_LOOKBACK, AsOfRows, minute_floor

log = logging.getLogger(__name__)

THROUGHPUT = "throughput"
DWELL = "dwell"
INFLIGHT = "inflight"
SKU_EVENTS = "sku_events"
DELAYS = "delays"

Dimension = Literal["region", "carrier", "warehouse"]
DIMENSIONS: tuple[Dimension, ...] = ("region", "carrier", "warehouse")
#: Delay states counted as delayed (the map's delay rate uses the same three).
DELAYED_STATES = ("at_risk", "late", "stalled")

#: Bucket widths tried in order: the first giving at most :data:`MAX_BUCKETS` points wins.
_BUCKETS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
)
MAX_BUCKETS = 240
#: Most raw events a look-up returns (positions in an area, one order's lineage).
MAX_EVENTS = 5000


class HistoryError(RuntimeError):
    """InfluxDB refused or failed a query; the message names the query and the reason."""


@dataclass(frozen=True)
class TimeWindow:
    """A half-open UTC interval [start, end)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimeWindow needs timezone-aware datetimes")
        if self.end <= self.start:
            raise ValueError(f"empty time window: {self.start} .. {self.end}")

    @classmethod
    def last(cls, span: timedelta, now: datetime) -> TimeWindow:
        return cls(now - span, now)

    @property
    def bucket(self) -> timedelta:
        span = self.end - self.start
        for width in _BUCKETS:
            if span / width <= MAX_BUCKETS:
                return width
        return _BUCKETS[-1]

    def where(self) -> str:
        return f"time >= '{_rfc3339(self.start)}' AND time < '{_rfc3339(self.end)}'"

    def group(self) -> str:
        return f"time({int(self.bucket.total_seconds())}s)"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# Query builders (pure) --------------------------------------------------------------------


def throughput_query(window: TimeWindow) -> str:
    return (
        f'SELECT sum("count") AS "events" FROM "{THROUGHPUT}" WHERE {window.where()} '
        f'GROUP BY {window.group()}, "status" fill(none)'
    )


def delay_query(window: TimeWindow, by: Dimension) -> str:
    if by not in DIMENSIONS:
        raise ValueError(f"cannot break delay rate down by {by!r}; choose one of {DIMENSIONS}")
    # Gauges: the last sample of each partition in a bucket, summed over partitions later.
    return (
        f'SELECT last("skus") AS "skus" FROM "{DELAYS}" WHERE {window.where()} '
        f'GROUP BY {window.group()}, "partition", "state", {_ident(by)} fill(none)'
    )


def dwell_query(window: TimeWindow) -> str:
    return (
        f'SELECT sum("total_s") AS "total_s", sum("count") AS "count" FROM "{DWELL}" '
        f'WHERE {window.where()} GROUP BY {window.group()}, "node" fill(none)'
    )


def inflight_query(window: TimeWindow) -> str:
    return (
        f'SELECT sum("count") AS "skus" FROM "{INFLIGHT}" WHERE {window.where()} '
        f'GROUP BY time(60s), "partition" fill(none)'
    )


def positions_query(bounds: tuple[float, float, float, float], window: TimeWindow, limit: int = MAX_EVENTS) -> str:
    lon0, lat0, lon1, lat1 = (float(v) for v in bounds)
    return (
        f'SELECT "order_id", "sku", "lat", "lon", "status" FROM "{SKU_EVENTS}" WHERE {window.where()} '
        f'AND "lat" >= {lat0!r} AND "lat" <= {lat1!r} AND "lon" >= {lon0!r} AND "lon" <= {lon1!r} '
        f"ORDER BY time DESC LIMIT {int(limit)}"
    )


def order_events_query(order_id: str, window: TimeWindow, limit: int = MAX_EVENTS) -> str:
    return (
        f'SELECT "event_id", "sku", "status", "lat", "lon", "late", "illegal", "source", "region" '
        f'FROM "{SKU_EVENTS}" WHERE {window.where()} AND "order_id" = {_literal(order_id)} '
        f"ORDER BY time ASC LIMIT {int(limit)}"
    )


#: Most incident and alert points read for one as-of minute (newest first).
MAX_AS_OF_EVENTS = 20_000


def as_of_queries(minute: datetime) -> list[str]:
    """The statements of :meth:`InfluxHistory.as_of`: gauges over the last minutes before the
    end of ``minute``, incidents and alerts over the last day (live traffic only, no replays)."""
    end = minute_floor(minute) + timedelta(minutes=1)
    recent = TimeWindow(end - GAUGE_LOOKBACK, end).where()
    gauges = recent + " AND \"replay\" = ''"
    events = TimeWindow(end - EVENT_LOOKBACK, end).where()
    limit = f"ORDER BY time DESC LIMIT {MAX_AS_OF_EVENTS}"
    return [
        f'SELECT "skus", "orders", "at_risk", "late", "stalled", "partition", "h3", "res", "region" '
        f'FROM "delay_cells" WHERE {recent}',
        f'SELECT "skus", "partition", "state" FROM "{DELAYS}" WHERE {gauges}',
        f'SELECT "orders", "partition" FROM "delays_orders" WHERE {gauges}',
        f'SELECT * FROM "incidents" WHERE {events} AND "replay" = \'\' {limit}',
        f'SELECT * FROM "alert_events" WHERE {events} {limit}',
    ]


def history_start_queries() -> list[str]:
    """The first minute point and the first incident (a backlog may open one before the first
    minute point is written)."""
    return ['SELECT first("orders") FROM "delays_orders"', 'SELECT first("skus") FROM "incidents"']


# Response shaping (pure) ------------------------------------------------------------------


def frames_from_response(body: dict[str, Any], query: str = "") -> list[pd.DataFrame]:
    """One long DataFrame per statement: ``time`` (UTC), the tag columns, the fields."""
    if "error" in body:
        raise HistoryError(f"InfluxDB rejected {query!r}: {body['error']}")
    frames: list[pd.DataFrame] = []
    for result in body.get("results", []):
        if "error" in result:
            raise HistoryError(f"InfluxDB rejected {query!r}: {result['error']}")
        parts = []
        for series in result.get("series", []):
            part = pd.DataFrame(series.get("values", []), columns=series["columns"])
            for tag, value in (series.get("tags") or {}).items():
                part[tag] = value
            parts.append(part)
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"time": []})
        frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
        frames.append(frame)
    return frames


def _empty(*columns: str) -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in columns})


def throughput_frame(raw: pd.DataFrame, window: TimeWindow) -> pd.DataFrame:
    """``time, status, events``: events per minute (bucket sums divided by bucket minutes)."""
    if raw.empty or "events" not in raw:
        return _empty("time", "status", "events")
    minutes = window.bucket.total_seconds() / 60.0
    out = raw[["time", "status", "events"]].copy()
    out["events"] = out["events"].astype(float) / minutes
    return out.sort_values(["time", "status"], ignore_index=True)


def _gauge_sum(raw: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Sum a per-partition gauge over partitions, carrying each partition's last sample
    forward over buckets where it wrote none (a quiet partition keeps its value)."""
    wide = raw.pivot_table(index="time", columns=["partition", *keys], values=value, aggfunc="last")
    wide = wide.sort_index().ffill().fillna(0.0)
    summed = wide.T.groupby(level=keys).sum().T if keys else wide.sum(axis=1).to_frame(value)
    if keys:  # stacking every column level leaves a Series
        stacked = cast("pd.Series[float]", summed.stack(level=list(range(len(keys))), future_stack=True))
        return stacked.rename(value).reset_index()
    return summed.reset_index()


def delay_frame(raw: pd.DataFrame, by: Dimension) -> pd.DataFrame:
    """``time, <by>, skus, delayed, delay_rate`` from per-partition delay-state gauges."""
    columns = ("time", by, "skus", "delayed", "delay_rate")
    if raw.empty or "skus" not in raw or by not in raw:
        return _empty(*columns)
    raw = raw.assign(partition=raw.get("partition", "0")).fillna({by: "unknown"})
    counts = _gauge_sum(raw, ["state", by], "skus")
    counts["delayed"] = counts["skus"].where(counts["state"].isin(DELAYED_STATES), 0.0)
    out = counts.groupby(["time", by], as_index=False)[["skus", "delayed"]].sum()
    out = out[out["skus"] > 0]
    out["delay_rate"] = out["delayed"] / out["skus"]
    return out[list(columns)].sort_values(["time", by], ignore_index=True)


def dwell_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """``time, node, count, dwell_s`` (mean seconds at the node in each bucket)."""
    if raw.empty or "total_s" not in raw:
        return _empty("time", "node", "count", "dwell_s")
    out = raw[raw["count"] > 0][["time", "node", "count", "total_s"]].copy()
    out["dwell_s"] = out["total_s"] / out["count"]
    return out.drop(columns="total_s").sort_values(["time", "node"], ignore_index=True)


def inflight_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """``time, skus``: SKU lines in flight per minute, over all partitions."""
    if raw.empty or "skus" not in raw:
        return _empty("time", "skus")
    raw = raw.assign(partition=raw.get("partition", "0"))
    return _gauge_sum(raw, [], "skus")[["time", "skus"]]


# The data-access object -------------------------------------------------------------------


class HistorySource(Protocol):
    """What the panels need from history, and ``close`` for whoever built it (its connections);
    :class:`InfluxHistory` is the real one."""

    def throughput(self, window: TimeWindow) -> pd.DataFrame: ...
    def as_of(self, minute: datetime) -> AsOfRows: ...
    def history_start(self) -> datetime | None: ...
    def delay_rate(self, window: TimeWindow, by: Dimension) -> pd.DataFrame: ...
    def dwell(self, window: TimeWindow) -> pd.DataFrame: ...
    def inflight(self, window: TimeWindow) -> pd.DataFrame: ...
    def positions(self, bounds: tuple[float, float, float, float], window: TimeWindow) -> pd.DataFrame: ...
    def order_events(self, order_id: str, window: TimeWindow) -> pd.DataFrame: ...
    def close(self) -> None: ...


class InfluxHistory:
    """Runs the history queries against an InfluxDB 1.x HTTP API (also 2.x v1-compat, 3.x)."""

    def __init__(self, url: str, db: str, *, auth: httpx.Auth | None = None, timeout_s: float = 10.0) -> None:
        self._client = httpx.Client(base_url=url, auth=auth, timeout=timeout_s)
        self._db = db

    @classmethod
    def from_settings(cls, settings: Settings) -> InfluxHistory:
        return cls(
            settings.influx_url, settings.influx_db, auth=influx_auth(settings), timeout_s=settings.influx_timeout_s
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> InfluxHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, influxql: str) -> pd.DataFrame:
        return self.query_all([influxql])[0]

    def query_all(self, statements: list[str]) -> list[pd.DataFrame]:
        """Several statements in one request: one frame each."""
        influxql = ";".join(statements)
        try:
            response = self._client.get("/query", params={"db": self._db, "q": influxql, "epoch": "ms"})
        except httpx.HTTPError as exc:
            raise HistoryError(f"InfluxDB unreachable for {influxql!r}: {exc}") from exc
        if response.status_code != 200:
            raise HistoryError(f"InfluxDB answered {response.status_code} to {influxql!r}: {response.text[:200]}")
        return frames_from_response(response.json(), influxql)

    def as_of(self, minute: datetime) -> AsOfRows:
        """What the war-room showed at the end of ``minute`` (rows; see :mod:`dashboard.warroom.as_of`)."""
        cells, delays, orders, incidents, alerts = self.query_all(as_of_queries(minute))
        return AsOfRows(minute_floor(minute), cells, delays, orders, incidents, alerts)

    def history_start(self) -> datetime | None:
        """The first minute the time travel can show (``None``: nothing written yet)."""
        firsts = [f["time"].iloc[0] for f in self.query_all(history_start_queries()) if not f.empty]
        return min(firsts).to_pydatetime() if firsts else None

    def throughput(self, window: TimeWindow) -> pd.DataFrame:
        return throughput_frame(self.query(throughput_query(window)), window)

    def delay_rate(self, window: TimeWindow, by: Dimension) -> pd.DataFrame:
        return delay_frame(self.query(delay_query(window, by)), by)

    def dwell(self, window: TimeWindow) -> pd.DataFrame:
        return dwell_frame(self.query(dwell_query(window)))

    def inflight(self, window: TimeWindow) -> pd.DataFrame:
        return inflight_frame(self.query(inflight_query(window)))

    def positions(self, bounds: tuple[float, float, float, float], window: TimeWindow) -> pd.DataFrame:
        return self.query(positions_query(bounds, window))

    def order_events(self, order_id: str, window: TimeWindow) -> pd.DataFrame:
        return self.query(order_events_query(order_id, window))
