"""Geofence stage: enter, dwell and exit events of parcels and couriers, in the worker.

Per batch it takes the WGS-84 fix of every accepted event (converted once, by the
:class:`~stream.stages.geo_stage.GeoStage`; fences are converted once too, on load, from the
offset system their layer declares) and steps two kinds of entity through the pure tracker
(:func:`geo.fence_tracker.track_fix`), with one vectorised index lookup per batch:

- the **parcel** (``sku/<order>|<sku>``) against every fence of ``config/geofences.yaml``
  (hubs, stations, warehouses, delivery zones, operator fences) and, while the SKU is out for
  delivery, against its **customer area**: a geodesic circle of ``customer_area_m`` around
  the SKU's destination (:func:`geo.fence_shapes.geodesic_circles`; the destination is in the
  event's CRS, like the fix);
- the **courier** (``courier/<partition>/<courier_id>``) against the fences of the file. A
  courier's fixes arrive with the orders it carries, so its visits are tracked per input
  partition (each partition's owner sees its own part of the courier's day).

What comes out:

- a ``geofence_events`` point per event (tags ``event`` enter/dwell/exit/dwell_exceeded,
  ``entity`` sku/courier, ``fence``, ``fence_kind``, ``layer``, ``partition``; fields
  ``order_id``, ``sku``, ``courier``, ``event_id``, ``dwell_s``). Identity: the source
  record, as for ``sku_events`` (:func:`stream.sinks.line_protocol.point_time_ns` of the fix time
  and the record offset); one record's events differ in their tags (one per entity, fence
  and event kind), so distinct events never collide and a replay rewrites the same points;
- a ``dwell`` point (tags ``node`` = fence, ``partition``, ``source=geofence``) for each
  exit of a parcel from a fence of the file: the war-room's dwell heatmap sums it with the
  scan-derived dwell (same identity scheme);
- a **stage advance** on entering a fence whose layer has ``advance_stage_to`` (a hub
  arrival proven by GPS): a ``source=geofence`` event applied to the SKU through the state
  machine (:func:`stream.core.lifecycle.apply_event`) when it moves the SKU forward. Its
  ``event_id`` is ``geofence:<fence>:<sku>``, so a SKU advances once per fence: a redelivery
  or a re-entry is a duplicate for the state machine. It joins the batch's accepted events
  (later stages, the aggregates and ``sku_events`` see it) and the order's timeline, i.e.
  its lineage;
- the order's ``geofence`` extension: ``nearby`` (SKU -> since when its courier is inside
  its customer area; the tracking page says "courier is nearby") and ``events`` (the newest
  enter/exit/overstay events of its SKUs, with the order's snapshot in the staff API).

State: each entity's :class:`~geo.fence_tracker.Membership` is stage state (changelogged to
its partition, handed back by ``restore``), kept only while the entity is inside a fence and
its SKU is open, and at most ``max_entities`` (over it, the longest-quiet are forgotten down
to 90 % of the bound). The fence files are hot reloaded on the tick
(:class:`~geo.fence_registry.GeofenceRegistry`): a bad file keeps the previous fences
serving and is logged.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import ChainMap
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import shapely

from geo.coords import to_wgs84_arrays
from geo.fence_config import FenceKind
from geo.fence_index import Fence, GeofenceIndex
from geo.fence_registry import GeofenceRegistry
from geo.fence_shapes import geodesic_circles
from geo.fence_tracker import EMPTY_MEMBERSHIP, FenceEvent, FenceEventKind, Membership, StageAdvance, track_fix
from stream.contract import CLOSED, STAGE_RANK, Crs, Status
from stream.core.lifecycle import apply_event
from stream.core.order_state import SkuState
from stream.core.progress import step
from stream.sinks.line_protocol import line, point_time_ns, sku_event_line
from stream.stage_api import Accepted, BatchContext
from stream.stages.geo_stage import GeoFix, GeoStage

log = logging.getLogger(__name__)

EXTENSION = "geofence"
GEOFENCE_EVENTS = "geofence_events"
DWELL = "dwell"
#: ``source`` of the events a fence entry applies, and tag of its dwell points.
SOURCE = "geofence"
CUSTOMER_LAYER = "customer_area"
CUSTOMER_PREFIX = "customer:"
#: Default radius of a SKU's customer area around its destination.
CUSTOMER_AREA_M = 500.0
#: Default bound of the tracked entities (parcels and couriers inside a fence).
MAX_ENTITIES = 200_000
#: Newest fence events kept on an order (its lineage in the war-room).
ORDER_EVENTS_KEPT = 20
#: Seconds between two checks of the fence files' mtimes (on the stage's tick).
RELOAD_INTERVAL_S = 1.0

_ID_CHARS = re.compile(r"[^A-Za-z0-9._:@/-]")
_NS = 1_000_000_000


def _iso(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / _NS, UTC).isoformat().replace("+00:00", "Z")


def _ns(at: datetime) -> int:
    delta = at - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1000


def _at(time_ns: int) -> datetime:
    # Fix times are event times (microsecond precision): exact in a datetime.
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=time_ns // 1000)


def advance_event_id(fence_id: str, sku: str) -> str:
    """The id of the event a SKU's entry into ``fence_id`` applies (one per SKU and fence)."""
    raw = f"{SOURCE}:{fence_id}:{sku}"
    event_id = _ID_CHARS.sub("_", raw)
    if event_id != raw or len(event_id) > 128:
        # A digest of the real ids keeps fences whose ids differ only in odd characters apart.
        digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
        event_id = f"{event_id[:100]}:{digest}"
    return event_id


def moves_forward(sku: SkuState, target: Status) -> bool:
    """Whether a GPS-proven ``target`` (a hub arrival) moves ``sku`` on: a legal step of the
    state machine to a different status that does not lower its rank (a courier passing its
    station while out for delivery is not a hub arrival)."""
    if sku.status is target or sku.status in CLOSED or sku.pinned:
        return False
    result = step(sku.progress, target)
    return not isinstance(result, str) and result.rank >= sku.rank and STAGE_RANK[target] >= sku.rank


@dataclass(slots=True)
class _Fix:
    """One accepted event's position, as the tracker sees it."""

    item: Accepted
    fix: GeoFix
    time_ns: int


class GeofenceStage:
    """See the module doc."""

    name = EXTENSION

    def __init__(
        self,
        geo: GeoStage,
        config_path: Path,
        *,
        customer_area_m: float = CUSTOMER_AREA_M,
        max_entities: int = MAX_ENTITIES,
        reload_interval_s: float = RELOAD_INTERVAL_S,
    ) -> None:
        self.geo = geo
        self.registry = GeofenceRegistry(config_path, datetime.now(UTC))
        self.customer_area_m = customer_area_m
        self.max_entities = max_entities
        self.reload_interval_s = reload_interval_s
        self._checked_at: datetime | None = None
        #: entity -> (membership, partition of its stage state)
        self.members: dict[str, tuple[Membership, int]] = {}
        #: entity -> partition, forgotten in this batch (their state is deleted)
        self._gone: dict[str, int] = {}

    # -- pipeline hooks -----------------------------------------------------------------
    async def restore(self, entries: Mapping[str, Any], partitions: set[int]) -> None:
        self.members = {}
        for entity, data in entries.items():
            try:
                self.members[entity] = (Membership.from_json_obj(data["m"]), int(data["p"]))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("geofence state of %s unreadable, starting it afresh: %r", entity, exc)

    async def tick(self, ctx: BatchContext) -> None:
        self.reload(ctx.now)

    def reload(self, now: datetime) -> None:
        """Pick up edited fence files (at most every ``reload_interval_s``)."""
        if self._checked_at is not None and (now - self._checked_at).total_seconds() < self.reload_interval_s:
            return
        self._checked_at = now
        self.registry.reload_if_changed(now)

    async def process(self, ctx: BatchContext) -> None:
        fixes = self._fixes(ctx)
        if not fixes:
            return
        index = self.registry.index  # one index for the whole batch, even if a reload swaps it
        inside = index.lookup([f.fix.lon for f in fixes], [f.fix.lat for f in fixes])
        customer = self._customer_areas(fixes)
        order_events: dict[str, list[dict[str, Any]]] = {}
        nearby: dict[str, dict[str, str | None]] = {}  # order -> sku -> since (None: left)
        dirty: set[str] = set()
        advances: list[tuple[_Fix, StageAdvance]] = []
        for f, fence_ids, area in zip(fixes, inside, customer, strict=True):
            item, event = f.item, f.item.event
            partition = item.record.partition
            sku_entity = f"sku/{event.order_id}|{event.sku}"
            ids = list(fence_ids)
            # The SKU's customer area beside the file's fences (an earlier fix's area too:
            # its kind is reported on exit).
            state = self._state(sku_entity)
            own = {old: _customer_fence(old, None) for old in state.visits if old.startswith(CUSTOMER_PREFIX)}
            if area is not None:
                ids.append(area.id)
                own[area.id] = area
            # ChainMap writes only to its first map: the index's own is never changed.
            shared = cast("MutableMapping[str, Fence]", index.by_id)
            fences: Mapping[str, Fence] = ChainMap(own, shared) if own else index.by_id
            result = track_fix(state, sku_entity, ids, _at(f.time_ns), fences)
            if not result.stale:
                self._keep(sku_entity, result.state, partition, dirty)
                self._emit(ctx, index, f, "sku", result.events, order_events, nearby)
                if result.advances:
                    # One advance per fix (overlapping fences would give two events, and two
                    # points of the same identity): the furthest stage, first fence by id.
                    advances.append((f, max(result.advances, key=lambda a: STAGE_RANK[a.status])))
            if event.courier_id:
                courier_entity = f"courier/{partition}/{event.courier_id}"
                result = track_fix(self._state(courier_entity), courier_entity, fence_ids, _at(f.time_ns), index.by_id)
                if not result.stale:
                    self._keep(courier_entity, result.state, partition, dirty)
                    self._emit(ctx, index, f, "courier", result.events, order_events, nearby)
            if item.change.after.status in CLOSED:
                self._forget(sku_entity, dirty)
        for f, advance in advances:
            self._advance(ctx, f, advance)
        self._bound(dirty)
        self._persist(ctx, dirty)
        self._orders(ctx, order_events, nearby)

    # -- inputs -------------------------------------------------------------------------
    def _fixes(self, ctx: BatchContext) -> list[_Fix]:
        out: list[_Fix] = []
        for item in ctx.accepted:
            fix = self.geo.batch.get(item.event.event_id)
            if fix is not None and item.event.source != SOURCE:
                out.append(_Fix(item, fix, item.change.entry.time_ns))
        return out

    def _customer_areas(self, fixes: list[_Fix]) -> list[Fence | None]:
        """The customer area of each fix's SKU while it is out for delivery, and whether the
        fix is inside it (vectorised: one circle per such fix, per CRS of the destination)."""
        out: list[Fence | None] = [None] * len(fixes)
        by_crs: dict[Crs, list[tuple[int, float, float]]] = {}
        for i, f in enumerate(fixes):
            event, after = f.item.event, f.item.change.after
            if after.status is not Status.OUT_FOR_DELIVERY:
                continue
            lat, lon = (
                (event.dest_lat, event.dest_lon)
                if event.dest_lat is not None
                else (after.facts.dest_lat, after.facts.dest_lon)
            )
            if lat is not None and lon is not None:
                by_crs.setdefault(event.crs, []).append((i, lon, lat))
        for crs, group in by_crs.items():
            lons, lats = to_wgs84_arrays(
                np.array([g[1] for g in group], dtype=np.float64),
                np.array([g[2] for g in group], dtype=np.float64),
                crs,
            )
            circles = geodesic_circles(lons, lats, self.customer_area_m)
            hits = shapely.intersects_xy(
                circles, [fixes[g[0]].fix.lon for g in group], [fixes[g[0]].fix.lat for g in group]
            )
            for (i, _, _), circle, hit in zip(group, circles, hits.tolist(), strict=True):
                if hit:
                    event = fixes[i].item.event
                    out[i] = _customer_fence(f"{CUSTOMER_PREFIX}{event.order_id}|{event.sku}", circle)
        return out

    # -- state --------------------------------------------------------------------------
    def _state(self, entity: str) -> Membership:
        found = self.members.get(entity)
        return found[0] if found is not None else EMPTY_MEMBERSHIP

    def _keep(self, entity: str, state: Membership, partition: int, dirty: set[str]) -> None:
        if state.visits:
            self.members[entity] = (state, partition)
            dirty.add(entity)
        elif entity in self.members:
            self._forget(entity, dirty)

    def _forget(self, entity: str, dirty: set[str]) -> None:
        found = self.members.pop(entity, None)
        if found is not None:
            self._gone[entity] = found[1]
            dirty.add(entity)

    def _bound(self, dirty: set[str]) -> None:
        if len(self.members) <= self.max_entities:
            return
        # Down to 90 % of the bound, so the sort is not repeated on every batch.
        excess = len(self.members) - self.max_entities * 9 // 10
        far_past = datetime.min.replace(tzinfo=UTC)
        quiet = sorted(self.members, key=lambda e: self.members[e][0].last_fix_at or far_past)
        for entity in quiet[:excess]:
            self._forget(entity, dirty)
        log.warning(
            "geofence state over its bound of %d: forgot the %d longest-quiet entities", self.max_entities, excess
        )

    def _persist(self, ctx: BatchContext, dirty: set[str]) -> None:
        for entity in dirty:
            found = self.members.get(entity)
            if found is not None:
                ctx.stage_put(self.name, entity, {"p": found[1], "m": found[0].to_json_obj()}, found[1])
            else:
                ctx.stage_delete(self.name, entity, self._gone.pop(entity))
        self._gone.clear()

    # -- outputs ------------------------------------------------------------------------
    def _emit(
        self,
        ctx: BatchContext,
        index: GeofenceIndex,
        f: _Fix,
        entity: str,
        events: tuple[FenceEvent, ...],
        order_events: dict[str, list[dict[str, Any]]],
        nearby: dict[str, dict[str, str | None]],
    ) -> None:
        item, event = f.item, f.item.event
        partition, offset = item.record.partition, item.record.offset
        for fence_event in events:
            fence_id = fence_event.fence_id
            customer = fence_id.startswith(CUSTOMER_PREFIX)
            fence = None if customer else index.get(fence_id)
            layer = CUSTOMER_LAYER if customer else (fence.layer if fence is not None else None)
            fence_tag = CUSTOMER_LAYER if customer else fence_id  # customer areas are per order: a field
            kind = fence_event.kind.value
            fence_kind = fence_event.fence_kind.value if fence_event.fence_kind is not None else None
            dwell_s = round(fence_event.dwell.total_seconds(), 3)
            # Times of the point: the record's identity; an overstay found at exit carries the
            # time it was last seen inside, so its point differs from the exit's by its tag.
            time_ns = point_time_ns(f.time_ns, offset)
            ctx.lines.append(
                line(
                    GEOFENCE_EVENTS,
                    {
                        "event": kind,
                        "entity": entity,
                        "fence": fence_tag,
                        "fence_kind": fence_kind,
                        "layer": layer,
                        "partition": str(partition),
                    },
                    {
                        "order_id": event.order_id,
                        "sku": event.sku,
                        "courier": event.courier_id,
                        "event_id": event.event_id,
                        "fence_id": fence_id,
                        "dwell_s": dwell_s,
                        "at_us": _ns(fence_event.at) // 1000,
                    },
                    time_ns,
                )
            )
            if entity == "sku" and fence_event.kind is FenceEventKind.EXIT and not customer:
                ctx.lines.append(
                    line(
                        DWELL,
                        {"node": fence_id, "partition": str(partition), "source": SOURCE},
                        {"count": 1, "total_s": dwell_s, "mean_s": dwell_s},
                        time_ns,
                    )
                )
            if entity == "sku" and fence_event.kind is not FenceEventKind.DWELL:
                order_events.setdefault(event.order_id, []).append(
                    {
                        "event": kind,
                        "sku": event.sku,
                        "fence": None if customer else fence_id,
                        "fence_kind": fence_kind,
                        "at": _iso(_ns(fence_event.at)),
                        "dwell_s": dwell_s,
                    }
                )
            if customer and entity == "sku":
                skus = nearby.setdefault(event.order_id, {})
                if fence_event.kind is FenceEventKind.ENTER:
                    skus[event.sku] = _iso(_ns(fence_event.at))
                elif fence_event.kind is FenceEventKind.EXIT:
                    skus[event.sku] = None

    def _advance(self, ctx: BatchContext, f: _Fix, advance: StageAdvance) -> None:
        """Apply a GPS-proven stage through the state machine, once per SKU and fence."""
        event = f.item.event
        order = ctx.order(event.order_id)
        # Judged against the SKU as the fix's event left it: the core applied the whole batch
        # first, so later events of the SKU may already be in its timeline (the advance then
        # goes in between, where the fold checks it again).
        if order is None or event.sku not in order.skus or not moves_forward(f.item.change.after, advance.status):
            return
        synthetic = event.model_copy(
            update={
                "event_id": advance_event_id(advance.fence_id, event.sku),
                "status": advance.status,
                "source": SOURCE,
                "node": advance.fence_id[:64],
                "lat": f.fix.lat,
                "lon": f.fix.lon,
                "crs": Crs.WGS84,
                "device_id": None,
            }
        )
        # One nanosecond after the fix that proved it: the fold sees it after that event.
        time_ns = f.time_ns + 1
        updated, change = apply_event(order, synthetic, time_ns)
        if change is None:
            return  # applied before (a redelivery, or an earlier visit of this fence)
        if change.entry.illegal is not None:
            return  # the SKU's later events do not allow it there: keep its timeline clean
        ctx.update_order(updated)
        record = f.item.record
        # No arrival time: it was derived here, not received (keeps it out of the sync lag).
        ctx.accepted.append(Accepted(replace(record, timestamp_ms=None), synthetic, change))
        aggregates = ctx.aggregates.get(record.partition)
        if aggregates is not None:
            aggregates.observe(change)
        ctx.lines.append(sku_event_line(synthetic, change, partition=record.partition, offset=record.offset))
        log.debug("%s advanced to %s by entering fence %s", event.order_id, advance.status.value, advance.fence_id)

    def _orders(
        self, ctx: BatchContext, order_events: dict[str, list[dict[str, Any]]], nearby: dict[str, dict[str, str | None]]
    ) -> None:
        # Orders showing "nearby" whose SKU moved on (delivered, ...) without a fence event.
        moved = {
            a.event.order_id
            for a in ctx.accepted
            if (o := ctx.order(a.event.order_id)) is not None and (o.extensions.get(EXTENSION) or {}).get("nearby")
        }
        for order_id in set(order_events) | set(nearby) | moved:
            order = ctx.order(order_id)
            if order is None:
                continue
            value = dict(order.extensions.get(EXTENSION) or {})
            close = dict(value.get("nearby") or {})
            for sku, since in nearby.get(order_id, {}).items():
                if since is None:
                    close.pop(sku, None)
                else:
                    close.setdefault(sku, since)
            for sku, state in order.skus.items():
                if state.status is not Status.OUT_FOR_DELIVERY:
                    close.pop(sku, None)
            events = (list(value.get("events") or []) + order_events.get(order_id, []))[-ORDER_EVENTS_KEPT:]
            new = {k: v for k, v in (("nearby", close), ("events", events)) if v}
            if new != value:
                ctx.update_order(order.with_extension(EXTENSION, new or None))


def _customer_fence(fence_id: str, circle: Any) -> Fence:
    return Fence(id=fence_id, layer=CUSTOMER_LAYER, kind=FenceKind.DELIVERY_STOP, geometry=circle)


__all__ = ["EXTENSION", "GEOFENCE_EVENTS", "GeofenceStage", "advance_event_id", "moves_forward"]
