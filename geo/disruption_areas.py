"""Disruption zones as operators declare them (a polygon, H3 cells or region codes) and the
in-flight SKUs they hit. Pure: zones and positions in, affected keys out.

The web tier validates an operator's zone (``stream.core.control_commands``) and
publishes it on ``orderradar-control``; every worker reads that topic back and evaluates the
zones against the last known positions of its own SKUs (:mod:`stream.stages.disruption_stage`).
Polygons reuse :func:`geo.disruptions.affected` (vectorised shapely, next legs included
when known); H3 cells are matched at each cell's own resolution; regions by the GB/T 2260
or ISO code a position was assigned (:mod:`geo.regions`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import h3
import numpy as np
import shapely.geometry

from geo.disruptions import DisruptionReason, DisruptionZone, PointSet, affected

#: Customer-visible delay category (``dashboard.tracking.milestones.DelayReason``) of a zone's reason.
CUSTOMER_REASON: dict[DisruptionReason, str] = {
    DisruptionReason.TYPHOON: "weather",
    DisruptionReason.ROAD_CLOSURE: "traffic",
    DisruptionReason.POWER_CUT: "other",
    DisruptionReason.OTHER: "other",
}


@dataclass(frozen=True)
class Positions:
    """Last known positions of SKUs (parallel sequences), with their region codes."""

    keys: Sequence[str]
    lats: Sequence[float]
    lons: Sequence[float]
    regions: Sequence[str | None]

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class DisruptionArea:
    """One declared zone: where (any of polygon, cells, regions), when and why."""

    id: str
    name: str
    reason: DisruptionReason
    starts_at: datetime | None
    ends_at: datetime
    polygon: Any = None  # shapely Polygon/MultiPolygon (WGS-84 lon/lat) or None
    cells_by_resolution: Mapping[int, frozenset[str]] = field(default_factory=dict)
    regions: frozenset[str] = frozenset()

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> DisruptionArea:
        """From a zone as the control topic carries it (``disruption_change``'s item)."""
        cells: dict[int, set[str]] = {}
        for cell in item.get("h3_cells") or ():
            cells.setdefault(h3.get_resolution(cell), set()).add(cell)
        try:
            reason = DisruptionReason(str(item.get("reason") or "other").strip().lower())
        except ValueError:
            reason = DisruptionReason.OTHER
        geometry = item.get("geometry")
        starts = item.get("starts_at")
        return cls(
            id=str(item["disruption_id"]),
            name=str(item.get("name") or item["disruption_id"]),
            reason=reason,
            starts_at=datetime.fromisoformat(starts) if starts else None,
            ends_at=datetime.fromisoformat(str(item["ends_at"])),
            polygon=shapely.geometry.shape(geometry) if geometry else None,
            cells_by_resolution={res: frozenset(c) for res, c in cells.items()},
            regions=frozenset(str(r) for r in item.get("regions") or ()),
        )

    @property
    def customer_reason(self) -> str:
        return CUSTOMER_REASON[self.reason]

    def is_active(self, now: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= now) and now < self.ends_at

    def hits(self, positions: Positions) -> set[str]:
        """Keys of ``positions`` inside the zone (by polygon, cell or region)."""
        if not len(positions):
            return set()
        hit: set[str] = set()
        if self.polygon is not None:
            zone = DisruptionZone(
                self.id,
                self.polygon,
                self.reason,
                self.starts_at or datetime.min.replace(tzinfo=self.ends_at.tzinfo),
                self.ends_at,
                "operator",
            )
            hit |= affected(zone, PointSet.of(list(positions.keys), positions.lons, positions.lats))
        for res, cells in self.cells_by_resolution.items():
            hit.update(
                k
                for k, lat, lon in zip(positions.keys, positions.lats, positions.lons, strict=True)
                if h3.latlng_to_cell(lat, lon, res) in cells
            )
        if self.regions:
            codes = np.asarray(positions.regions, dtype=object)
            hit.update(np.asarray(positions.keys, dtype=object)[np.isin(codes, list(self.regions))].tolist())
        return hit
