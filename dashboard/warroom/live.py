"""The live war-room state as the browser holds it, read into typed frames. Pure.

``assets/warroom_live.js`` keeps the gateway's ``/ws/warroom`` state (a snapshot, then
``update`` messages, each with ``epoch`` and ``seq``; see ``dashboard.gateway.ws_warroom``)
and publishes one ``dcc.Store`` per channel: ``{"seq": <last seq>, "items": {key: data}}``.
The functions here turn those items into DataFrames and small records for the figures and
tables the server draws (on a user's action, or when cells, incidents, alerts or zones
change); they never reach the network. What a live update changes every second (the KPI
strip, the hexagons' colours, the coverage note) is drawn from the same stores in the
browser, by ``assets/warroom_views.js``.

Channel items this module reads (unknown fields are ignored, missing counts are 0):

* ``heatmap`` (from the worker, keyed by H3 cell): ``{"cell", "res"?, "region"?, "skus",
  "orders"?, "at_risk", "late", "stalled"}``. Delay rate = (at_risk + late + stalled) / skus.
* ``kpis`` (from the worker, one item, any key): ``{"skus_in_flight", "orders_in_flight",
  "on_time_rate", "at_risk", "late", "stalled", "eta_slips"?, "at"?}``; read in the browser
  (``warroom_views.js``: ``kpis``), which counts open incidents and alerts by tier from the
  ``incident`` and ``alert`` channels.
* ``incident`` (``order-incidents`` records of ``stream.core.incident_detector``): ``incident_id``,
  ``kind``, ``state``, ``title``, ``root_cause`` (``lat``/``lon``/``h3_cells`` for areas),
  ``counts``, ``trend``, ``sample_orders``, ``opened_at``; optional ``tier``, ``lat``/``lon``.
* ``alert`` and ``silence`` (``dashboard.gateway.alert_board``), ``disruption`` (zones).
* ``warroom``: the core worker's per-partition summaries (``inflight_by_status``,
  ``inflight_by_region``, ``watermark``); SKUs in flight come from here (in the browser) when
  no ``kpis`` item says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import h3
import pandas as pd

HEATMAP = "heatmap"
KPIS = "kpis"
INCIDENT = "incident"
ALERT = "alert"
SILENCE = "silence"
DISRUPTION = "disruption"
#: The core worker's per-partition summaries (``stream.core.aggregates.PartitionAggregates.snapshot``:
#: no ``type`` field, so the gateway files them under its default channel).
PARTITIONS = "warroom"
#: Channels the browser publishes into stores (one store each, see ``ids.live_store``).
CHANNELS = (HEATMAP, KPIS, INCIDENT, ALERT, SILENCE, DISRUPTION, PARTITIONS)

TIERS = ("P1", "P2", "P3", "P4")
OPEN_ALERT_STATUSES = frozenset({"pending", "firing", "acked", "silenced", "inhibited"})
CELL_COLUMNS = ["cell", "skus", "orders", "at_risk", "late", "stalled", "delay_rate", "region"]


def as_dict(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (feeds evolve; never crash on them)."""
    return value if isinstance(value, dict) else {}


def items(store: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``{key: data}`` of a channel store (empty before the first message)."""
    if not store:
        return {}
    found = store.get("items")
    return found if isinstance(found, dict) else {}


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _ratio(bad: pd.Series, total: pd.Series) -> pd.Series:
    return (bad / total.where(total > 0)).fillna(0.0).clip(0.0, 1.0)


def cells_frame(store: Mapping[str, Any] | None, res: int | None = None) -> pd.DataFrame:
    """One row per H3 cell at resolution ``res``.

    When the worker sends several resolutions, only one is used (else SKUs would count
    twice): ``res`` itself if present, else the nearest finer one, rolled up to ``res``
    (parents are exact enough for a display grid). ``None`` keeps the finest resolution.
    """
    rows = []
    for key, item in items(store).items():
        if not isinstance(item, dict):
            continue
        cell = str(item.get("cell") or key)
        if not h3.is_valid_cell(cell):
            continue
        rows.append(
            (
                cell,
                h3.get_resolution(cell),
                _count(item.get("skus")),
                _count(item.get("orders")),
                _count(item.get("at_risk")),
                _count(item.get("late")),
                _count(item.get("stalled")),
                item.get("region") if isinstance(item.get("region"), str) else None,
            )
        )
    frame = pd.DataFrame(rows, columns=["cell", "res", "skus", "orders", "at_risk", "late", "stalled", "region"])
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c == "delay_rate" else "object") for c in CELL_COLUMNS})
    present = sorted(set(frame["res"]))
    finer = [r for r in present if res is None or r >= res]
    source = (max(finer) if res is None else min(finer)) if finer else max(present)
    frame = frame[frame["res"] == source].copy()
    if res is not None and source > res:
        frame["cell"] = [h3.cell_to_parent(c, res) for c in frame["cell"]]
        frame = frame.groupby("cell", as_index=False, sort=True).agg(
            skus=("skus", "sum"),
            orders=("orders", "sum"),
            at_risk=("at_risk", "sum"),
            late=("late", "sum"),
            stalled=("stalled", "sum"),
            region=("region", "first"),
        )
    frame["delay_rate"] = _ratio(frame["at_risk"] + frame["late"] + frame["stalled"], frame["skus"])
    cells: pd.DataFrame = frame[CELL_COLUMNS].sort_values("cell", ignore_index=True)
    return cells


def regions_frame(cells: pd.DataFrame, region_of_cell: Mapping[str, str | None]) -> pd.DataFrame:
    """Cells rolled up to provinces: ``code, skus, at_risk, late, stalled, delay_rate``.

    A cell's own ``region`` wins; else ``region_of_cell`` (from the boundary index) is used.
    """
    if cells.empty:
        return pd.DataFrame({"code": [], "skus": [], "at_risk": [], "late": [], "stalled": [], "delay_rate": []})
    frame = cells.copy()
    frame["code"] = [
        r if isinstance(r, str) and r else region_of_cell.get(c)
        for c, r in zip(frame["cell"], frame["region"], strict=True)
    ]
    frame = (
        frame.dropna(subset=["code"])
        .groupby("code", as_index=False)
        .agg(skus=("skus", "sum"), at_risk=("at_risk", "sum"), late=("late", "sum"), stalled=("stalled", "sum"))
    )
    frame["delay_rate"] = _ratio(frame["at_risk"] + frame["late"] + frame["stalled"], frame["skus"])
    return frame


@dataclass(frozen=True)
class Incident:
    incident_id: str
    kind: str
    state: str
    title: str
    root_cause: str
    tier: str
    owner: str | None
    affected_orders: int
    affected_skus: int
    trend: tuple[int, ...]
    direction: str
    opened_at: str
    lat: float | None
    lon: float | None
    cells: tuple[str, ...]
    sample_orders: tuple[str, ...]
    #: The structured root cause the human title is built from (``dashboard.warroom.titles``):
    #: its dimension (``hub``, ``area``, ...), its values, the items by delay state or finding
    #: kind, the labels all its items share (a hub's region) and a disruption zone's name.
    dimension: str = ""
    cause: dict[str, Any] = field(default_factory=dict)
    by_label: dict[str, int] = field(default_factory=dict)
    shared: dict[str, str] = field(default_factory=dict)
    zone_name: str | None = None
    #: A flow incident's check (``stream.core.flow_incidents``): ``check``, ``observed``, ``expected``.
    flow: dict[str, Any] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.state != "resolved"


def _alerts_by_incident(alert_store: Mapping[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for item in items(alert_store).values():
        if isinstance(item, dict):
            for incident_id in item.get("incident_ids") or ():
                found.setdefault(str(incident_id), []).append(item)
    return found


def _worst_tier(tiers: list[str]) -> str:
    known = [t for t in tiers if t in TIERS]
    return min(known) if known else "P4"


def _position(record: dict[str, Any], cells: tuple[str, ...]) -> tuple[float | None, float | None]:
    root = as_dict(record.get("root_cause"))
    for source in (record, root):
        lat, lon = source.get("lat"), source.get("lon")
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            return float(lat), float(lon)
    if cells:
        lat, lon = h3.cell_to_latlng(cells[0])
        return lat, lon
    return None, None


def _zone_name(record: dict[str, Any]) -> str | None:
    """A disruption zone incident's zone name (``stream.stages.disruption_stage`` keeps it in
    ``zone`` even after the zone was withdrawn)."""
    name = as_dict(record.get("zone")).get("name")
    return str(name) if isinstance(name, str) and name else None


def incidents(incident_store: Mapping[str, Any] | None, alert_store: Mapping[str, Any] | None) -> list[Incident]:
    """Incidents, worst tier first, then most affected orders; tier and owner come from the
    alerts covering them (owner: whoever acked the alert)."""
    by_incident = _alerts_by_incident(alert_store)
    found = []
    for key, record in items(incident_store).items():
        if not isinstance(record, dict):
            continue
        incident_id = str(record.get("incident_id") or key)
        covering = by_incident.get(incident_id, [])
        tier = record.get("tier") or _worst_tier([str(a.get("tier")) for a in covering])
        owners = [a.get("acked_by") for a in covering if a.get("acked_by")]
        root = as_dict(record.get("root_cause"))
        cells = tuple(str(c) for c in root.get("h3_cells") or ())
        counts = as_dict(record.get("counts"))
        trend = as_dict(record.get("trend"))
        lat, lon = _position(record, cells)
        found.append(
            Incident(
                incident_id=incident_id,
                kind=str(record.get("kind") or ""),
                state=str(record.get("state") or "open"),
                title=str(record.get("title") or incident_id),
                root_cause=str(record.get("root_cause_text") or record.get("title") or ""),
                tier=str(tier),
                owner=str(owners[-1]) if owners else None,
                affected_orders=_count(counts.get("orders")),
                affected_skus=_count(counts.get("skus")),
                trend=tuple(_count(v) for v in trend.get("series") or ()),
                direction=str(trend.get("direction") or "flat"),
                opened_at=str(record.get("opened_at") or ""),
                lat=lat,
                lon=lon,
                cells=cells,
                sample_orders=tuple(str(o) for o in record.get("sample_orders") or ()),
                dimension=str(record.get("dimension") or ""),
                cause=root,
                by_label={str(k): _count(v) for k, v in as_dict(counts.get("by_label")).items()},
                shared={str(k): str(v) for k, v in as_dict(record.get("labels")).items()},
                zone_name=_zone_name(record),
                flow=as_dict(record.get("flow")),
            )
        )
    return sorted(found, key=lambda i: (not i.open, i.tier, -i.affected_orders, i.incident_id))


@dataclass(frozen=True)
class Alert:
    alert_id: str
    status: str
    tier: str
    title: str
    incident_ids: tuple[str, ...]
    labels: dict[str, str]
    first_at: str
    updated_at: str
    acked_by: str | None
    acked_at: str | None
    resolved_by: str | None
    resolved_at: str | None
    last_event: str

    @property
    def open(self) -> bool:
        return self.status in OPEN_ALERT_STATUSES

    @property
    def can_ack(self) -> bool:
        return self.status in ("pending", "firing")

    @property
    def can_resolve(self) -> bool:
        return self.status != "resolved"


def _alert_title(item: dict[str, Any]) -> str:
    labels = as_dict(item.get("labels"))
    shown = [f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("tier", "state", "incident_id")]
    return ", ".join(shown) or str(item.get("alert_id"))


def alerts(alert_store: Mapping[str, Any] | None) -> list[Alert]:
    """Alerts: open ones first (worst tier first), then the rest newest first."""
    found = []
    for key, item in items(alert_store).items():
        if not isinstance(item, dict):
            continue
        found.append(
            Alert(
                alert_id=str(item.get("alert_id") or key),
                status=str(item.get("status") or "firing"),
                tier=str(item.get("tier") or "P4"),
                title=_alert_title(item),
                incident_ids=tuple(str(i) for i in item.get("incident_ids") or ()),
                labels={str(k): str(v) for k, v in (item.get("labels") or {}).items()}
                if isinstance(item.get("labels"), dict)
                else {},
                first_at=str(item.get("first_at") or ""),
                updated_at=str(item.get("updated_at") or ""),
                acked_by=item.get("acked_by"),
                acked_at=item.get("acked_at"),
                resolved_by=item.get("resolved_by"),
                resolved_at=item.get("resolved_at"),
                last_event=str(item.get("last_event") or ""),
            )
        )
    open_first = sorted((a for a in found if a.open), key=lambda a: (a.tier, a.first_at))
    closed = sorted((a for a in found if not a.open), key=lambda a: a.updated_at, reverse=True)
    return open_first + closed


@dataclass(frozen=True)
class Zone:
    """A disruption zone as the gateway lists it (``stream.core.control_commands``)."""

    zone_id: str
    name: str
    reason: str
    starts_at: str
    ends_at: str
    created_by: str
    #: Exterior rings of its polygons and H3 cells, as (lon, lat) pairs, for drawing.
    rings: tuple[tuple[tuple[float, float], ...], ...]
    regions: tuple[str, ...]
    #: Affected orders as the worker reported them (``None``: not reported).
    affected_orders: int | None


def geometry_rings(geometry: Any) -> tuple[tuple[tuple[float, float], ...], ...]:
    """Exterior rings of a GeoJSON Polygon/MultiPolygon (or a Feature holding one)."""
    if not isinstance(geometry, dict):
        return ()
    if geometry.get("type") == "Feature":
        return geometry_rings(geometry.get("geometry"))
    coords = geometry.get("coordinates") or []
    kind = geometry.get("type")
    polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    rings = []
    for polygon in polygons:
        if polygon and polygon[0]:
            rings.append(tuple((float(p[0]), float(p[1])) for p in polygon[0]))
    return tuple(rings)


def cell_ring(cell: str) -> tuple[tuple[float, float], ...]:
    ring = tuple((lon, lat) for lat, lon in h3.cell_to_boundary(cell))
    return ring + ring[:1]


def zone_from_item(key: str, item: Mapping[str, Any]) -> Zone:
    affected = item.get("affected_orders")
    if isinstance(affected, list):
        affected = len(affected)
    cells = [str(c) for c in item.get("h3_cells") or () if h3.is_valid_cell(str(c))]
    return Zone(
        zone_id=str(item.get("disruption_id") or item.get("id") or key),
        name=str(item.get("name") or ""),
        reason=str(item.get("reason") or "other"),
        starts_at=str(item.get("starts_at") or item.get("created_at") or ""),
        ends_at=str(item.get("ends_at") or ""),
        created_by=str(item.get("created_by") or ""),
        rings=geometry_rings(item.get("geometry")) + tuple(cell_ring(c) for c in cells),
        regions=tuple(str(r) for r in item.get("regions") or ()),
        affected_orders=int(affected) if isinstance(affected, int | float) else None,
    )


def zones(zone_store: Mapping[str, Any] | None) -> list[Zone]:
    return sorted(
        (zone_from_item(k, v) for k, v in items(zone_store).items() if isinstance(v, dict)),
        key=lambda z: (z.starts_at, z.zone_id),
    )


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
