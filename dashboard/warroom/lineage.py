"""One order's event lineage per SKU, from what the gateway and InfluxDB know. Pure.

The gateway answers ``GET /api/v1/orders/{order_id}`` with the worker's latest snapshot
(``stream.core.rollup.order_snapshot``): per SKU the newest timeline entries, each with
``flags`` (``late``: arrived after a newer event; ``illegal``: not a legal step, kept but
not applied, with a ``reason``) and the SKU's last position. InfluxDB's ``sku_events`` add
older entries and a position per event, which draws the route. Entries are merged by
``event_id``; the snapshot wins where both have one.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dashboard.warroom.map_figures import Route

COLUMNS = ["event_id", "sku", "status", "event_time", "outcome", "detail", "lat", "lon"]


def _outcome(flags: Any, late: Any = False, illegal: Any = False) -> str:
    flags = flags if isinstance(flags, list | tuple) else ()
    if "illegal" in flags or illegal is True:
        return "rejected"
    if "late" in flags or late is True:
        return "late"
    return "accepted"


def snapshot_entries(snapshot: dict[str, Any] | None) -> pd.DataFrame:
    rows = []
    skus = (snapshot or {}).get("skus")
    for sku, state in skus.items() if isinstance(skus, dict) else ():
        if not isinstance(state, dict):
            continue
        for entry in state.get("timeline") or ():
            if not isinstance(entry, dict) or not entry.get("event_time"):
                continue
            detail = " · ".join(str(v) for v in (entry.get("reason"), entry.get("node"), entry.get("source")) if v)
            rows.append(
                (
                    str(entry.get("event_id") or ""),
                    str(sku),
                    str(entry.get("status")),
                    entry["event_time"],
                    _outcome(entry.get("flags")),
                    detail,
                    None,
                    None,
                )
            )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True, format="ISO8601")
    return frame


def influx_entries(events: pd.DataFrame) -> pd.DataFrame:
    """``sku_events`` rows (``time, event_id, sku, status, lat, lon, late, illegal, source``)."""
    if events.empty:
        return pd.DataFrame({c: [] for c in COLUMNS})
    frame = pd.DataFrame(
        {
            "event_id": events["event_id"].astype(str),
            "sku": events["sku"].astype(str),
            "status": events["status"].astype(str),
            "event_time": events["time"],
            "outcome": [
                _outcome((), late, illegal)
                for late, illegal in zip(
                    events["late"], events.get("illegal", pd.Series(False, index=events.index)), strict=True
                )
            ]
            if "late" in events
            else "accepted",
            "detail": events["source"].fillna("") if "source" in events else "",
            "lat": events.get("lat"),
            "lon": events.get("lon"),
        }
    )
    return frame[COLUMNS]


def lineage(snapshot: dict[str, Any] | None, events: pd.DataFrame) -> pd.DataFrame:
    """Every known event of the order, oldest first, one row per event id."""
    from_snapshot = snapshot_entries(snapshot)
    from_influx = influx_entries(events)
    if from_influx.empty:
        return from_snapshot.sort_values("event_time", ignore_index=True)
    positions = from_influx.set_index("event_id")[["lat", "lon"]]
    known = set(from_snapshot["event_id"])
    merged = pd.concat([from_snapshot, from_influx[~from_influx["event_id"].isin(known)]], ignore_index=True)
    merged["lat"] = merged["event_id"].map(positions["lat"].to_dict())
    merged["lon"] = merged["event_id"].map(positions["lon"].to_dict())
    return merged.sort_values("event_time", ignore_index=True)


def route(snapshot: dict[str, Any] | None, events: pd.DataFrame, status_label: Any = str) -> Route | None:
    """Where the order has been (events with a position, in time order), then where it is
    and where it goes (last positions and destinations from the snapshot)."""
    lats: list[float] = []
    lons: list[float] = []
    labels: list[str] = []
    if not events.empty and {"lat", "lon"} <= set(events.columns):
        placed = events.dropna(subset=["lat", "lon"]).sort_values("time")
        for lat, lon, status in zip(placed["lat"], placed["lon"], placed["status"], strict=True):
            if lats and (lats[-1], lons[-1]) == (float(lat), float(lon)):
                continue  # several scans at one place
            lats.append(float(lat))
            lons.append(float(lon))
            labels.append(status_label(str(status)))
    skus = (snapshot or {}).get("skus")
    for state in skus.values() if isinstance(skus, dict) else ():
        if not isinstance(state, dict):
            continue
        for key in ("position", "destination"):
            point = state.get(key)
            if (
                isinstance(point, dict)
                and isinstance(point.get("lat"), int | float)
                and isinstance(point.get("lon"), int | float)
                and (not lats or (lats[-1], lons[-1]) != (float(point["lat"]), float(point["lon"])))
            ):
                lats.append(float(point["lat"]))
                lons.append(float(point["lon"]))
                labels.append(status_label(str(state.get("status"))) if key == "position" else "⌂")
    return Route(tuple(lats), tuple(lons), tuple(labels)) if lats else None
