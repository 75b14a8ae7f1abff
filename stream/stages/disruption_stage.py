"""Disruption stage: declared zones mark the in-flight SKUs inside them and raise one incident.

Zones come from :class:`stream.kafka.zone_feed.ZoneFeed` (every worker reads them all); positions
are the last WGS-84 fixes the :class:`~stream.stages.geo_stage.GeoStage` holds for this
worker's in-flight SKUs (closed SKUs leave it; SKUs of a replay of history, whose time is
not today's, are never in a zone). On the stage's tick, when the zone set
changed or every ``interval_s``, each active zone is evaluated (:mod:`geo.disruption_areas`)
and the differences are published:

- the order's ``disruption`` extension ``{zones, names, skus, reason}`` (``reason`` is the
  customer-visible delay category: typhoon -> weather, road closure -> traffic), which the
  tracking page shows as a delay notice; withdrawing or expiring the zone clears it;
- one incident per zone on ``order-incidents`` and the alerting inputs (dimension ``area``,
  so the alert kind is ``region_disruption``), opened, updated as its counts change, and
  resolved when the zone goes.

With several workers each reports the SKUs of its own partitions under the zone's incident
id; the counts then are those of the last report (the single-detector deployment of
:mod:`stream.core.delays_engine` is the place to merge them).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from geo.disruption_areas import DisruptionArea, Positions
from stream.core.replay import timeline_of_order
from stream.stage_api import BatchContext
from stream.stages.geo_stage import GeoStage

EXTENSION = "disruption"
#: Share of a zone's SKUs that must be in one region for the incident to carry it.
_SHARED = 0.8


class ZoneSource(Protocol):
    version: int

    def active(self, now: datetime) -> list[DisruptionArea]: ...

    async def run(self) -> None: ...


@dataclass(frozen=True)
class DisruptionTopics:
    incidents: str
    #: One-partition topic of the alerting agent (``None``: no alerting).
    alert_inputs: str | None = None


@dataclass
class _Reported:
    orders: int
    skus: int
    opened_at: datetime
    peak: int = 0
    #: The zone's name and reason, kept for the incident's last record after it is withdrawn.
    name: str = ""
    reason: str = ""


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class DisruptionStage:
    """See the module doc."""

    name = EXTENSION

    def __init__(
        self,
        geo: GeoStage,
        zones: ZoneSource,
        topics: DisruptionTopics,
        *,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.geo = geo
        self.zones = zones
        self.topics = topics
        self.interval_s = interval_s
        self.clock = clock
        self._seen_version = -1
        self._evaluated_at = float("-inf")
        #: order id -> {sku: zone id} as last published
        self._marks: dict[str, dict[str, str]] = {}
        self._reported: dict[str, _Reported] = {}
        #: zone id -> region code of each SKU inside, as of the last evaluation
        self._regions: dict[str, Counter[str | None]] = {}

    async def run(self) -> None:
        """Background work of the stage (started with the worker): follow the zones."""
        await self.zones.run()

    async def process(self, ctx: BatchContext) -> None:
        return None  # positions change per batch; zones are evaluated on the tick

    async def tick(self, ctx: BatchContext) -> None:
        now = self.clock()
        if self.zones.version == self._seen_version and now - self._evaluated_at < self.interval_s:
            return
        self._seen_version, self._evaluated_at = self.zones.version, now
        zones = self.zones.active(ctx.now)
        if not zones and not self._marks and not self._reported:
            return
        self.evaluate(ctx, zones)

    def evaluate(self, ctx: BatchContext, zones: list[DisruptionArea]) -> None:
        positions = self._positions()
        region_of = dict(zip(positions.keys, positions.regions, strict=True))
        marks: dict[str, dict[str, str]] = {}
        by_zone: dict[str, tuple[set[str], set[str]]] = {}
        self._regions = {}
        for zone in zones:
            orders, skus = by_zone.setdefault(zone.id, (set(), set()))
            regions = self._regions[zone.id] = Counter()
            for key in zone.hits(positions):
                order_id, _, sku = key.partition("|")
                if self._replayed(ctx, order_id):
                    continue  # a replay of history is not in today's zones
                marks.setdefault(order_id, {}).setdefault(sku, zone.id)
                orders.add(order_id)
                skus.add(key)
                regions[region_of.get(key)] += 1
        self._publish_marks(ctx, marks, {z.id: z for z in zones})
        self._publish_incidents(ctx, zones, by_zone)

    @staticmethod
    def _replayed(ctx: BatchContext, order_id: str) -> bool:
        order = ctx.order(order_id)
        return order is not None and timeline_of_order(dict(order.extensions)) is not None

    def _positions(self) -> Positions:
        keys: list[str] = []
        lats: list[float] = []
        lons: list[float] = []
        regions: list[str | None] = []
        for key, fix in self.geo.last_fixes():
            keys.append(key)
            lats.append(fix.lat)
            lons.append(fix.lon)
            regions.append(fix.region)
        return Positions(keys, lats, lons, regions)

    def _publish_marks(
        self, ctx: BatchContext, marks: dict[str, dict[str, str]], zones: dict[str, DisruptionArea]
    ) -> None:
        for order_id in set(marks) | set(self._marks):
            new, old = marks.get(order_id), self._marks.get(order_id)
            if new == old:
                continue
            order = ctx.order(order_id)
            if order is None:
                continue
            value: dict[str, Any] | None = None
            if new:
                ids = sorted(set(new.values()))
                value = {
                    "zones": ids,
                    "names": [zones[i].name for i in ids],
                    "skus": sorted(new),
                    "reason": zones[ids[0]].customer_reason,
                }
            ctx.update_order(order.with_extension(EXTENSION, value))
        self._marks = marks

    def _publish_incidents(
        self, ctx: BatchContext, zones: Iterable[DisruptionArea], by_zone: dict[str, tuple[set[str], set[str]]]
    ) -> None:
        live = {z.id: z for z in zones}
        for zone_id, zone in live.items():
            orders, skus = by_zone[zone_id]
            before = self._reported.get(zone_id)
            if before is None and not skus:
                continue  # nothing of ours inside (yet)
            if before is not None and (before.orders, before.skus) == (len(orders), len(skus)):
                continue
            if before is None:
                state = "open"
                before = self._reported[zone_id] = _Reported(0, 0, ctx.now)
            else:
                state = "growing" if len(skus) > before.skus else "stable"
            before.orders, before.skus = len(orders), len(skus)
            before.name, before.reason = zone.name, zone.reason.value
            before.peak = max(before.peak, len(skus))
            self._incident(ctx, zone, state, before, sorted(orders))
        for zone_id in [z for z in self._reported if z not in live]:
            reported = self._reported.pop(zone_id)
            reported.orders = reported.skus = 0
            self._incident(ctx, None, "resolved", reported, [], zone_id=zone_id)

    def _incident(
        self,
        ctx: BatchContext,
        zone: DisruptionArea | None,
        state: str,
        counts: _Reported,
        orders: list[str],
        zone_id: str | None = None,
    ) -> None:
        zone_id = zone.id if zone is not None else str(zone_id)
        name = zone.name if zone is not None else counts.name or zone_id
        location = None
        if zone is not None and zone.polygon is not None:
            point = zone.polygon.representative_point()
            location = {"lat": round(point.y, 5), "lon": round(point.x, 5)}
        reason = zone.reason.value if zone is not None else counts.reason
        text = f"disruption zone {name}" + (f" ({reason})" if reason else "")
        incident_id = f"disruption-{zone_id}"
        # the region (province code) its SKUs are in, when nearly all share one: inhibition
        # of the hub and carrier incidents of that region matches on it
        regions = self._regions.get(zone_id) or Counter()
        region, n = min(regions.items(), key=lambda kv: (-kv[1], str(kv[0])), default=(None, 0))
        labels = {"region": region} if region is not None and n >= _SHARED * sum(regions.values()) else {}
        record = {
            "v": 1,
            "incident_id": incident_id,
            "kind": "delay",
            "event": f"incident.{state}",
            "state": state,
            "dimension": "area",
            "root_cause": {"area": zone_id},
            "root_cause_text": text,
            "location": location,
            "title": f"{text}: {counts.orders} orders, {counts.skus} SKUs",
            "zone": {"id": zone_id, "name": name, "reason": reason},
            "at": _iso(ctx.now),
            "opened_at": _iso(counts.opened_at),
            "first_seen": _iso(counts.opened_at),
            "last_seen": _iso(ctx.now),
            "resolved_at": _iso(ctx.now) if state == "resolved" else None,
            "counts": {
                "current": counts.skus,
                "peak": counts.peak,
                "skus": counts.skus,
                "orders": counts.orders,
                "by_label": {},
            },
            "sample_orders": orders[:20],
            "sample_skus": [],
            "labels": labels,
        }
        value, key = orjson.dumps(record), incident_id.encode()
        ctx.emit(self.topics.incidents, value, key)
        if self.topics.alert_inputs is not None:
            ctx.emit(self.topics.alert_inputs, value, key, partition=0)
