"""Geo enrichment stage: WGS-84 position, region and H3 cells of every accepted event.

Runs once per batch, vectorised: positions are converted per CRS with
:func:`geo.coords.to_wgs84_arrays`, regions looked up with :func:`geo.regions.regions_for`
and cells computed with :func:`geo.cells.h3_cells_batch` (resolutions 3 and 5, the
war-room heatmap's two zoom levels). Later stages read :attr:`GeoStage.batch` (fix per
``event_id`` of the current batch) and :meth:`GeoStage.fix_of` (last fix per SKU).

Per-partition heatmap counts (SKUs per res-5 cell by their last fix) are kept in memory;
they are rebuilt from traffic after a restart (positions are not changelogged).

Delivered away from the stop (data quality): every applied ``delivered`` event with a fix
and a stop (``dest_lat``/``dest_lon`` of the event, else of the SKU) is checked. The stop
is converted with the same CRS as the fix (the event's ``crs``: a GCJ-02 source gives both
in GCJ-02), the great-circle distance between the two WGS-84 points is written as a
``delivery_distance`` point (tags ``source``, ``courier``, ``station``; fields
``distance_m``, ``limit_m``, ``away``), and the order's snapshot says it under
``extensions.delivery_check`` (per SKU). ``away`` means farther than ``delivered_away_m``
(``data_quality`` in ``config/sla.yaml``, 500 m by default).

Trail (the tracking page's route): each SKU's recent WGS-84 fixes go into the order's
snapshot under ``extensions.trail``, ``{sku: [[lat, lon, event time ISO], ...]}`` in event-time
order, bounded to the newest :data:`TRAIL_MAX_POINTS` within :data:`TRAIL_WINDOW_S` of the
newest fix. The trail lives in the order's state (it survives a restart with the order);
the gateway decides what a customer may see of it (``dashboard.gateway.track_map``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import h3
import numpy as np

from geo.cells import h3_cells_batch
from geo.coords import to_wgs84_arrays
from geo.distance import haversine_m
from geo.regions import regions_for
from stream.contract import Crs, OrderEvent, Status
from stream.sinks.line_protocol import line, point_time_ns
from stream.stage_api import Accepted, BatchContext

#: Heatmap zoom levels (country, city).
HEATMAP_RESOLUTIONS: tuple[int, ...] = (3, 5)
#: Resolution of the ``h3`` tag on ``sku_events`` points.
TAG_RESOLUTION = 5
#: InfluxDB measurement of the delivery-to-stop distances.
DELIVERY_DISTANCE = "delivery_distance"
#: Order extension (snapshot ``extensions``) with the check of each delivered SKU.
DELIVERY_CHECK = "delivery_check"
#: Default of ``data_quality.delivered_away_m``.
DELIVERED_AWAY_M = 500.0
#: Order extension with each SKU's recent fixes (the tracking page's trail).
TRAIL = "trail"
TRAIL_MAX_POINTS = 50
TRAIL_WINDOW_S = 2 * 3600
#: Decimals kept per trail fix (~1 m); the gateway coarsens further for customers.
TRAIL_DECIMALS = 5


@dataclass(frozen=True, slots=True)
class GeoFix:
    """Where an event happened, in WGS-84, with its region and heatmap cells."""

    lat: float
    lon: float
    region: str | None  # GB/T 2260 adcode for Chinese provinces, ISO numeric for countries
    cells: tuple[tuple[int, str], ...]  # (resolution, cell), HEATMAP_RESOLUTIONS order

    def cell(self, resolution: int) -> str | None:
        for res, cell in self.cells:
            if res == resolution:
                return cell
        return None


def tag_cell(lat: float, lon: float) -> str | None:
    """The ``sku_events`` h3 tag hook (:data:`stream.sinks.line_protocol.CellFunction`).

    The hook sees no CRS, so it treats the position as WGS-84; GCJ-02/BD-09 offsets
    (a few hundred metres) rarely change a res-5 cell (~250 km2)."""
    return str(h3.latlng_to_cell(lat, lon, TAG_RESOLUTION))


def locate(events: list[OrderEvent]) -> list[GeoFix | None]:
    """Fixes of ``events`` (``None`` where an event has no position), vectorised per CRS."""
    out: list[GeoFix | None] = [None] * len(events)
    by_crs: dict[Crs, list[int]] = {}
    for i, event in enumerate(events):
        if event.lat is not None and event.lon is not None:
            by_crs.setdefault(event.crs, []).append(i)
    for crs, idx in by_crs.items():
        lons, lats = to_wgs84_arrays(
            np.array([events[i].lon for i in idx], dtype=np.float64),
            np.array([events[i].lat for i in idx], dtype=np.float64),
            crs,
        )
        regions = regions_for(lons, lats)
        cells = h3_cells_batch(lats, lons, HEATMAP_RESOLUTIONS)
        lat_list, lon_list = lats.tolist(), lons.tolist()
        for j, i in enumerate(idx):
            region = regions[j]
            fix_cells = tuple((res, c) for res in HEATMAP_RESOLUTIONS if (c := cells[res][j]) is not None)
            out[i] = GeoFix(lat_list[j], lon_list[j], region.code if region is not None else None, fix_cells)
    return out


@dataclass(frozen=True, slots=True)
class DeliveryCheck:
    """How far a delivery's fix was from its stop (WGS-84, metres)."""

    distance_m: float
    limit_m: float
    courier: str | None
    station: str | None

    @property
    def away(self) -> bool:
        return self.distance_m > self.limit_m

    def to_dict(self) -> dict[str, object]:
        return {
            "distance_m": round(self.distance_m, 1),
            "limit_m": self.limit_m,
            "away": self.away,
            "courier": self.courier,
            "station": self.station,
        }


def check_deliveries(
    items: list[Accepted], fixes: list[GeoFix | None], limit_m: float
) -> list[tuple[Accepted, DeliveryCheck]]:
    """The distance check of each applied ``delivered`` event with a fix and a stop, in batch
    order; stops are converted from the event's CRS, like its fix (vectorised per CRS)."""
    by_crs: dict[Crs, list[tuple[int, GeoFix, float, float]]] = {}  # (index, fix, stop lon, stop lat)
    for i, (item, fix) in enumerate(zip(items, fixes, strict=True)):
        event = item.event
        if fix is None or event.status is not Status.DELIVERED or item.change.entry.illegal is not None:
            continue
        facts = item.change.after.facts
        lat, lon = (event.dest_lat, event.dest_lon) if event.dest_lat is not None else (facts.dest_lat, facts.dest_lon)
        if lat is not None and lon is not None:
            by_crs.setdefault(event.crs, []).append((i, fix, lon, lat))
    found: list[tuple[int, DeliveryCheck]] = []
    for crs, group in by_crs.items():
        lons, lats = to_wgs84_arrays(
            np.array([g[2] for g in group], dtype=np.float64), np.array([g[3] for g in group], dtype=np.float64), crs
        )
        distances = haversine_m([g[1].lon for g in group], [g[1].lat for g in group], lons, lats).tolist()
        for (i, _, _, _), distance in zip(group, distances, strict=True):
            item = items[i]
            station = item.event.node or item.change.after.facts.node
            found.append((i, DeliveryCheck(distance, limit_m, item.event.courier_id, station)))
    found.sort(key=lambda pair: pair[0])
    return [(items[i], check) for i, check in found]


def delivery_distance_line(item: Accepted, check: DeliveryCheck) -> str:
    event = item.event
    return line(
        DELIVERY_DISTANCE,
        {
            "source": event.source,
            "courier": check.courier,
            "station": check.station,
            "partition": str(item.record.partition),
        },
        {
            "distance_m": round(check.distance_m, 1),
            "limit_m": float(check.limit_m),
            "away": int(check.away),
            "order_id": event.order_id,
            "sku": event.sku,
            "event_id": event.event_id,
        },
        point_time_ns(item.change.entry.time_ns, item.record.offset),
    )


def _iso_ns(time_ns: int) -> str:
    """UTC, always with microseconds: one fixed format, so text order is time order."""
    return datetime.fromtimestamp(time_ns / 1e9, tz=UTC).isoformat(timespec="microseconds")


def extend_trail(trail: list[list[object]], points: Iterable[tuple[int, GeoFix]]) -> list[list[object]]:
    """``trail`` with ``points`` ((event time ns, fix), any order) merged in by event time,
    a repeated spot collapsed into its newest time, bounded by count and by age. Runs per
    positioned event: times are compared as text (:func:`_iso_ns`), and fixes newer than
    the trail (the usual case) are appended without re-sorting it."""
    fixes = sorted(((_iso_ns(t), fix) for t, fix in points), key=lambda p: p[0])
    old = trail  # written only by extend_trail: [lat, lon, time text], in time order
    new: list[tuple[str, list[object]]]
    if old and fixes and fixes[0][0] <= str(old[-1][2]):  # out of order: merge the slow way
        merged = {str(p[2]): p for p in old}
        merged.update({at: [round(f.lat, TRAIL_DECIMALS), round(f.lon, TRAIL_DECIMALS), at] for at, f in fixes})
        old, new = [], [(at, merged[at]) for at in sorted(merged)]
    else:
        new = [(at, [round(f.lat, TRAIL_DECIMALS), round(f.lon, TRAIL_DECIMALS), at]) for at, f in fixes]
    out = list(old)
    for _, point in new:
        if out and out[-1][0] == point[0] and out[-1][1] == point[1]:
            out[-1] = point  # the courier stood still: one point, newest time
        else:
            out.append(point)
    if not out:
        return out
    newest = str(out[-1][2])
    cutoff = _iso_ns(int(datetime.fromisoformat(newest).timestamp() * 1e9) - TRAIL_WINDOW_S * 10**9)
    start = bisect_left(out, cutoff, lo=max(0, len(out) - TRAIL_MAX_POINTS), key=lambda p: str(p[2]))
    return out[start:]


class GeoStage:
    """See the module doc."""

    name = "geo"

    def __init__(self, delivered_away_m: float = DELIVERED_AWAY_M) -> None:
        self.delivered_away_m = delivered_away_m
        #: Fixes of the current batch's accepted events, by ``event_id``.
        self.batch: dict[str, GeoFix] = {}
        self._last: dict[str, GeoFix] = {}  # sku key -> last fix
        self._partition_of: dict[str, int] = {}
        #: Per partition: SKUs whose last fix is in each res-5 cell.
        self.heat: dict[int, Counter[str]] = {}

    def fix_of(self, sku_key: str) -> GeoFix | None:
        return self._last.get(sku_key)

    def last_fixes(self) -> Iterable[tuple[str, GeoFix]]:
        """``(sku key, last fix)`` of every in-flight SKU with a known position."""
        return self._last.items()

    async def process(self, ctx: BatchContext) -> None:
        events = [a.event for a in ctx.accepted]
        fixes = locate(events)
        self.batch = {}
        trails: dict[str, dict[str, list[tuple[int, GeoFix]]]] = {}  # order -> sku -> new fixes
        for item, fix in zip(ctx.accepted, fixes, strict=True):
            if fix is None:
                continue
            event = item.event
            self.batch[event.event_id] = fix
            trails.setdefault(event.order_id, {}).setdefault(event.sku, []).append((item.change.entry.time_ns, fix))
            key = f"{event.order_id}|{event.sku}"
            partition = item.record.partition
            heat = self.heat.setdefault(partition, Counter())
            old = self._last.get(key)
            old_cell = old.cell(5) if old is not None else None
            if old_cell is not None:
                old_part = self._partition_of.get(key, partition)
                counter = self.heat.get(old_part)
                if counter is not None:
                    counter[old_cell] -= 1
                    if counter[old_cell] <= 0:
                        del counter[old_cell]
            new_cell = fix.cell(5)
            if new_cell is not None:
                heat[new_cell] += 1
            self._last[key] = fix
            self._partition_of[key] = partition
        self._record_trails(ctx, trails)
        for item, check in check_deliveries(ctx.accepted, fixes, self.delivered_away_m):
            ctx.lines.append(delivery_distance_line(item, check))
            order = ctx.order(item.event.order_id)
            if order is not None:
                checks = dict(order.extensions.get(DELIVERY_CHECK) or {})
                checks[item.event.sku] = check.to_dict()
                ctx.update_order(order.with_extension(DELIVERY_CHECK, checks))

    @staticmethod
    def _record_trails(ctx: BatchContext, trails: dict[str, dict[str, list[tuple[int, GeoFix]]]]) -> None:
        for order_id, by_sku in trails.items():
            order = ctx.order(order_id)
            if order is None:
                continue
            current = order.extensions.get(TRAIL)
            updated = dict(current) if isinstance(current, dict) else {}
            for sku, points in by_sku.items():
                old = updated.get(sku)
                updated[sku] = extend_trail(old if isinstance(old, list) else [], points)
            ctx.update_order(order.with_extension(TRAIL, updated))

    def forget(self, sku_key: str) -> None:
        """A SKU closed: it leaves the heatmap."""
        fix = self._last.pop(sku_key, None)
        partition = self._partition_of.pop(sku_key, None)
        cell = fix.cell(5) if fix is not None else None
        if cell is not None and partition is not None:
            counter = self.heat.get(partition)
            if counter is not None and counter[cell] > 0:
                counter[cell] -= 1
                if counter[cell] <= 0:
                    del counter[cell]


__all__ = [
    "DELIVERY_CHECK",
    "DELIVERY_DISTANCE",
    "HEATMAP_RESOLUTIONS",
    "TRAIL",
    "DeliveryCheck",
    "GeoFix",
    "GeoStage",
    "check_deliveries",
    "extend_trail",
    "locate",
    "tag_cell",
]
