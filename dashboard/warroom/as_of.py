"""The war-room as of a past minute, from InfluxDB rows (pure: no I/O, no clock).

The time travel (``panels/time_travel.py``) reads the rows with
:meth:`dashboard.warroom.history.InfluxHistory.as_of` and turns them here into the same
store contents the live feed publishes (``{"seq", "items"}`` per channel, see
:mod:`dashboard.warroom.live`), so the map, KPI and incident panels draw a past minute
exactly as they draw the live one.

Series read (written by the worker's delays stage, ``stream/stages/delays_stage.py``; a
minute's points hold the state at the end of that minute, per source ``partition``):

* ``delay_cells``: the heatmap; tags ``partition``, ``h3``, ``res``, ``region``; fields
  ``skus``, ``orders``, ``at_risk``, ``late``, ``stalled``.
* ``delays``: SKUs in flight by ``state`` (and region, carrier, warehouse); field ``skus``.
* ``delays_orders``: orders in flight; field ``orders``.
* ``incidents``: one point per incident lifecycle event; tags ``kind``, ``state``; fields
  ``incident_id``, ``title``, ``root_cause``, ``orders``, ``skus``, ``opened_at``, ``lat``, ``lon``.
* ``alert_events`` (the alerting agent, ``alerting/decisions.py``): tags ``event``, ``tier``;
  fields ``alert_id``, ``incident_ids`` (comma separated), ``by``.

A partition writes points only for what it holds, so a gauge "as of M" is each partition's
newest minute at or before M; partitions whose newest minute is more than
:data:`STALE_MINUTES` behind the newest of all held nothing since (they count as empty).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from dashboard.warroom.localtime import zone

#: How far back a gauge is looked for (minutes without any point show an empty map).
GAUGE_LOOKBACK = timedelta(minutes=15)
#: How far back incidents and alerts are looked for (one still open keeps its last point).
EVENT_LOOKBACK = timedelta(hours=24)
STALE_MINUTES = 1
DELAYED = ("at_risk", "late", "stalled")

#: ``alert_events.event`` -> the alert's status after it (others leave the status alone).
_ALERT_STATUS = {
    "fired": "firing",
    "acked": "acked",
    "resolved": "resolved",
    "silenced": "silenced",
    "unmuted": "firing",
    "inhibited": "inhibited",
}


def minute_floor(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(second=0, microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _int(value: object) -> int:
    """A count read back from InfluxDB (``None`` or NaN where a point has no such field)."""
    if not isinstance(value, numbers.Real | str):
        return 0
    try:
        return int(float(value))
    except (ValueError, OverflowError):  # NaN, infinity, a text that is no number
        return 0


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def latest_per_partition(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of each partition's newest minute, leaving out partitions that fell silent
    (newest minute more than :data:`STALE_MINUTES` behind the newest of all)."""
    if rows.empty or "time" not in rows:
        return rows
    rows = rows.assign(partition=rows.get("partition", "0"))
    newest = rows.groupby("partition")["time"].transform("max")
    rows = rows[rows["time"] == newest]
    cutoff = rows["time"].max() - pd.Timedelta(minutes=STALE_MINUTES)
    fresh: pd.DataFrame = rows[rows["time"] >= cutoff]
    return fresh


def heatmap_items(cells: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``heatmap`` items (one per H3 cell, partitions summed) from ``delay_cells`` rows."""
    rows = latest_per_partition(cells)
    if rows.empty or "h3" not in rows:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for row in rows.to_dict("records"):
        cell = row.get("h3")
        if not isinstance(cell, str):
            continue
        item = out.setdefault(
            cell,
            {
                "cell": cell,
                "res": _int(row.get("res")),
                "region": _text(row.get("region")),
                "skus": 0,
                "orders": 0,
                "at_risk": 0,
                "late": 0,
                "stalled": 0,
            },
        )
        for name in ("skus", "orders", *DELAYED):
            item[name] += _int(row.get(name))
    return out


def kpi_item(delays: pd.DataFrame, orders: pd.DataFrame, at: datetime) -> dict[str, Any] | None:
    """The ``kpis`` item as of ``at`` from ``delays`` and ``delays_orders`` rows (``None``:
    nothing was in flight then, or no history)."""
    rows = latest_per_partition(delays)
    if rows.empty or "state" not in rows:
        return None
    by_state = {str(k): _int(v) for k, v in rows.groupby("state")["skus"].sum().items()}
    skus = sum(by_state.values())
    counted = latest_per_partition(orders)
    return {
        "skus_in_flight": skus,
        "orders_in_flight": sum(_int(v) for v in counted["orders"]) if "orders" in counted else None,
        "on_time_rate": round(by_state.get("on_track", 0) / skus, 4) if skus else 1.0,
        "at_risk": by_state.get("at_risk", 0),
        "late": by_state.get("late", 0),
        "stalled": by_state.get("stalled", 0),
        "at": _iso(at),
    }


def incident_items(rows: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Incidents as of the rows' end: each incident's newest point, as an ``incident`` item."""
    if rows.empty or "incident_id" not in rows:
        return {}
    newest = rows.sort_values("time").groupby("incident_id", sort=False).tail(1)
    out: dict[str, dict[str, Any]] = {}
    for row in newest.to_dict("records"):
        incident_id = str(row["incident_id"])
        lat, lon = row.get("lat"), row.get("lon")
        out[incident_id] = {
            "incident_id": incident_id,
            "kind": _text(row.get("kind")) or "",
            "state": _text(row.get("state")) or "open",
            "title": _text(row.get("title")) or _text(row.get("root_cause")) or incident_id,
            "root_cause_text": _text(row.get("root_cause")) or "",
            "counts": {"orders": _int(row.get("orders")), "skus": _int(row.get("skus"))},
            "opened_at": _text(row.get("opened_at")) or _iso(row["time"].to_pydatetime()),
            **(
                {"lat": float(lat), "lon": float(lon)}
                if isinstance(lat, float) and isinstance(lon, float) and not (pd.isna(lat) or pd.isna(lon))
                else {}
            ),
        }
    return out


def alert_items(rows: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Alerts as of the rows' end: status, tier and who acked, replayed from their events."""
    if rows.empty or "alert_id" not in rows:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for row in rows.sort_values("time").to_dict("records"):
        alert_id = _text(row.get("alert_id"))
        if alert_id is None:
            continue
        at = _iso(row["time"].to_pydatetime())
        alert = out.setdefault(
            alert_id,
            {"alert_id": alert_id, "status": "firing", "tier": "P4", "first_at": at, "incident_ids": [], "labels": {}},
        )
        alert["updated_at"] = at
        if _text(row.get("tier")):
            alert["tier"] = row["tier"]
        if _text(row.get("incident_ids")):
            alert["incident_ids"] = str(row["incident_ids"]).split(",")
        for name in ("kind", "region", "warehouse", "carrier", "channel"):
            if _text(row.get(name)):
                alert["labels"][name] = row[name]
        event = str(row.get("event") or "")
        if event in _ALERT_STATUS:
            alert["status"] = _ALERT_STATUS[event]
            alert["last_event"] = event
        if event == "acked":
            alert["acked_by"], alert["acked_at"] = _text(row.get("by")), at
        if event == "resolved":
            alert["resolved_by"], alert["resolved_at"] = _text(row.get("by")), at
    return out


@dataclass(frozen=True)
class AsOfRows:
    """What :meth:`InfluxHistory.as_of` read for one minute."""

    minute: datetime
    cells: pd.DataFrame
    delays: pd.DataFrame
    orders: pd.DataFrame
    incidents: pd.DataFrame
    alerts: pd.DataFrame


def stores(rows: AsOfRows) -> dict[str, dict[str, Any]]:
    """Channel -> store contents (as ``assets/warroom_live.js`` publishes them) for the minute."""
    end = rows.minute + timedelta(minutes=1)
    kpis = kpi_item(rows.delays, rows.orders, end)
    return {
        "heatmap": {"seq": None, "items": heatmap_items(rows.cells)},
        "kpis": {"seq": None, "items": {"national": kpis} if kpis else {}},
        "incident": {"seq": None, "items": incident_items(rows.incidents)},
        "alert": {"seq": None, "items": alert_items(rows.alerts)},
        # The per-partition summaries are live-only: the KPIs come from the ``kpis`` item.
        "warroom": {"seq": None, "items": {}},
    }


def minute_label(epoch_minute: int, tz: str | None = "UTC", dated: bool = False) -> str:
    """``HH:MM`` (``MM-DD HH:MM`` with ``dated``) of an epoch minute in zone ``tz``."""
    at = datetime.fromtimestamp(epoch_minute * 60, UTC).astimezone(zone(tz))
    return at.strftime("%m-%d %H:%M" if dated else "%H:%M")


def slider_marks(first: int, last: int, tz: str | None = "UTC", count: int = 5) -> dict[int, str]:
    """About ``count`` evenly spaced labels for a slider over epoch minutes [first, last]."""
    if last <= first:
        return {last: minute_label(last, tz)}
    dated = last - first > 24 * 60
    step = max(1, (last - first) // max(1, count - 1))
    return {m: minute_label(m, tz, dated) for m in [*range(first, last, step), last]}
