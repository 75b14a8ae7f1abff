"""Geo enrichment stage: WGS-84 position, region and H3 cells of every accepted event.

Runs once per batch, vectorised: positions are converted per CRS with
:func:`geo.coords.to_wgs84_arrays`, regions looked up with :func:`geo.regions.regions_for`
and cells computed with :func:`geo.cells.h3_cells_batch` (resolutions 3 and 5, the
war-room heatmap's two zoom levels). Later stages read :attr:`GeoStage.batch` (fix per
``event_id`` of the current batch) and :meth:`GeoStage.fix_of` (last fix per SKU).

Per-partition heatmap counts (SKUs per res-5 cell by their last fix) are kept in memory;
they are rebuilt from traffic after a restart (positions are not changelogged).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import h3
import numpy as np

from geo.cells import h3_cells_batch
from geo.coords import to_wgs84_arrays
from geo.regions import regions_for
from stream.contract import Crs, OrderEvent
from stream.pipeline import BatchContext

#: Heatmap zoom levels (country, city).
HEATMAP_RESOLUTIONS: tuple[int, ...] = (3, 5)
#: Resolution of the ``h3`` tag on ``sku_events`` points.
TAG_RESOLUTION = 5


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
    """The ``sku_events`` h3 tag hook (:data:`stream.line_protocol.CellFunction`).

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
        lons, lats = to_wgs84_arrays(np.array([events[i].lon for i in idx], dtype=np.float64),
                                     np.array([events[i].lat for i in idx], dtype=np.float64), crs)
        regions = regions_for(lons, lats)
        cells = h3_cells_batch(lats, lons, HEATMAP_RESOLUTIONS)
        lat_list, lon_list = lats.tolist(), lons.tolist()
        for j, i in enumerate(idx):
            region = regions[j]
            fix_cells = tuple((res, c) for res in HEATMAP_RESOLUTIONS if (c := cells[res][j]) is not None)
            out[i] = GeoFix(lat_list[j], lon_list[j], region.code if region is not None else None, fix_cells)
    return out


class GeoStage:
    """See the module doc."""

    name = "geo"

    def __init__(self) -> None:
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
        for item, fix in zip(ctx.accepted, fixes, strict=True):
            if fix is None:
                continue
            event = item.event
            self.batch[event.event_id] = fix
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


__all__ = ["HEATMAP_RESOLUTIONS", "GeoFix", "GeoStage", "locate", "tag_cell"]
