"""Delays stage: drives :class:`stream.delays_engine.DelaysEngine` from the batch pipeline.

Per batch (and on idle ticks) it feeds the accepted events of each partition, with their
positions converted to WGS-84 by the :class:`~stream.stages.geo_stage.GeoStage`, and
publishes what the engine decided:

- incident lifecycle events on ``order-incidents`` (key ``incident_id``) and as
  ``incidents`` points; also forwarded to the alerting inputs topic when configured;
- a ``delays`` point per minute (SKUs by state, tags partition/state/region/carrier/warehouse);
- ``warroom-updates`` ``heatmap`` items (H3 res 3 and 5) and a ``kpis`` item, at most once
  per ``interval_s`` (coalesced).

State: :meth:`DelaysEngine.take_dirty` entries as stage state (SKU entries to their SKU's
partition, lane histograms to theirs, the ``core`` entry to the lowest owned partition).
One engine serves all partitions of the worker: with several workers each has its own
detectors (see :mod:`stream.delays_engine` for the single-detector deployment).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from stream.contract import CLOSED, Crs, OrderEvent
from stream.data_quality import IllegalTransition
from stream.delays import DelayState, sku_key
from stream.delays_engine import DelaysEngine, DelaysResult
from stream.incidents import IncidentEvent
from stream.lifecycle import Outcome
from stream.line_protocol import line, point_time_ns
from stream.pipeline import Accepted, BatchContext
from stream.sla import SlaRules, load_sla_rules
from stream.stages.geo_stage import HEATMAP_RESOLUTIONS, GeoStage

log = logging.getLogger(__name__)

_BAD = (DelayState.AT_RISK, DelayState.LATE, DelayState.STALLED)


@dataclass(frozen=True)
class DelaysTopics:
    incidents: str
    warroom: str
    #: One-partition topic of the alerting agent (``None``: no alerting).
    alert_inputs: str | None = None


@dataclass(slots=True)
class _Sku:
    """What the war-room outputs need of an in-flight SKU (kept from transitions, so the
    once-a-second outputs cost a dict walk rather than a view of every tracked SKU)."""

    order_id: str
    partition: int
    state: DelayState
    region: str | None
    carrier: str | None
    warehouse: str | None


@dataclass
class _Cell:
    res: int
    region: str | None = None
    skus: int = 0
    orders: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)

    def item(self, cell: str) -> dict[str, Any]:
        return {"type": "heatmap", "key": cell, "cell": cell, "res": self.res, "region": self.region,
                "skus": self.skus, "orders": len(self.orders), "at_risk": self.counts["at_risk"],
                "late": self.counts["late"], "stalled": self.counts["stalled"]}


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class DelaysStage:
    """See the module doc."""

    name = "delays"

    def __init__(self, rules: SlaRules, topics: DelaysTopics, geo: GeoStage, *, interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = rules
        self.topics = topics
        self.geo = geo
        self.interval_s = interval_s
        self.clock = clock
        self.engine = DelaysEngine(rules)
        self._core_partition = 0
        self._last_sent = -1e18
        self._pending = False
        self._last_minute: int | None = None
        self._sent_cells: dict[str, dict[str, Any]] = {}
        #: Last WGS-84 position of each node (hub, station), for incident root causes.
        self.nodes: dict[str, tuple[float, float]] = {}
        self._skus: dict[str, _Sku] = {}

    @classmethod
    def from_file(cls, topics: DelaysTopics, geo: GeoStage, **kwargs: Any) -> DelaysStage:
        return cls(load_sla_rules(), topics, geo, **kwargs)

    # -- pipeline hooks -----------------------------------------------------------
    async def restore(self, entries: Mapping[str, Any], partitions: set[int]) -> None:
        self.engine = DelaysEngine.from_entries(self.rules, entries)
        self._core_partition = min(partitions) if partitions else 0
        self._skus = {}
        for view in self.engine.views():
            sku = self.engine.tracker.get(sku_key(view.order_id, view.sku))
            if not view.closed and sku is not None:
                lane = view.lane
                self._skus[sku_key(view.order_id, view.sku)] = _Sku(
                    view.order_id, sku.partition, view.state, lane.region, lane.carrier, lane.warehouse)
        self._pending = True

    async def process(self, ctx: BatchContext) -> None:
        result = DelaysResult()
        by_partition = ctx.accepted_by_partition()
        for partition, items in sorted(by_partition.items()):
            received = max((a.record.timestamp_ms or 0) for a in items)
            now = datetime.fromtimestamp(received / 1000, timezone.utc) if received else ctx.now
            result.extend(self.engine.process(self._inputs(items), partition=partition, now=now))
        if not by_partition:
            result.extend(self.engine.tick(ctx.now))
        self._publish(ctx, result)

    async def tick(self, ctx: BatchContext) -> None:
        self._publish(ctx, self.engine.tick(ctx.now))

    # -- inputs -------------------------------------------------------------------
    def _inputs(self, items: list[Accepted]) -> list[OrderEvent | IllegalTransition]:
        out: list[OrderEvent | IllegalTransition] = []
        fixes = self.geo.batch
        for item in items:
            event = item.event
            fix = fixes.get(event.event_id)
            if fix is not None:
                if event.crs is not Crs.WGS84:
                    event = event.model_copy(update={"lat": fix.lat, "lon": fix.lon, "crs": Crs.WGS84})
                if event.node:
                    self.nodes[event.node] = (round(fix.lat, 5), round(fix.lon, 5))
            change = item.change
            key = sku_key(event.order_id, event.sku)
            if change.after.status in CLOSED:  # the SKU's status, not a late event's
                self._skus.pop(key, None)
            elif key not in self._skus:
                self._skus[key] = _Sku(event.order_id, item.record.partition, DelayState.ON_TRACK, event.region,
                                       event.carrier, event.warehouse)
            if change.outcome is Outcome.ILLEGAL:
                before = change.before.status if change.before is not None else None
                out.append(IllegalTransition(event, before, change.illegal_reason or "illegal transition"))
            else:
                out.append(event)
        return out

    # -- outputs ------------------------------------------------------------------
    def _publish(self, ctx: BatchContext, result: DelaysResult) -> None:
        # A detector emits all events of an evaluation slot together (one ``at``), several
        # with the same tags: their rank among them keeps their points apart.
        ranks: Counter[float] = Counter()
        for incident in result.incidents:
            self._incident(ctx, incident, ranks[incident.at])
            ranks[incident.at] += 1
        for transition in result.transitions:
            if transition.closed:
                self.geo.forget(transition.key)
                self._skus.pop(transition.key, None)
                continue
            lane = transition.lane
            known = self._skus.get(transition.key)
            if known is None:
                tracked = self.engine.tracker.get(transition.key)
                partition = tracked.partition if tracked is not None else self._core_partition
                self._skus[transition.key] = _Sku(transition.order_id, partition, transition.state,
                                                  lane.region, lane.carrier, lane.warehouse)
            else:
                known.state = transition.state
                known.region, known.carrier, known.warehouse = lane.region, lane.carrier, lane.warehouse
        self._persist(ctx)
        if result.transitions or result.incidents or ctx.accepted:
            self._pending = True
        now = self.clock()
        if self._pending and now - self._last_sent >= self.interval_s:
            self._last_sent = now
            self._pending = False
            self._views_out(ctx)

    def _incident(self, ctx: BatchContext, incident: IncidentEvent, rank: int) -> None:
        record = dict(incident.to_record())
        root = dict(record.get("root_cause") or {})
        node = root.get("hub", root.get("node"))
        if isinstance(node, str) and "lat" not in root and node in self.nodes:
            root["lat"], root["lon"] = self.nodes[node]
            record["root_cause"] = root
        record["event"] = incident.type
        value = orjson.dumps(record)
        ctx.emit(self.topics.incidents, value, incident.kafka_key)
        if self.topics.alert_inputs is not None:
            ctx.emit(self.topics.alert_inputs, value, incident.kafka_key, partition=0)
        point = incident.to_influx()
        ctx.lines.append(line("incidents", point["tags"], point["fields"], point_time_ns(point["time_ns"], rank)))

    def _persist(self, ctx: BatchContext) -> None:
        for key, value in self.engine.take_dirty().items():
            partition = self._core_partition
            if key.startswith("sku/"):
                sku = self.engine.tracker.get(key[len("sku/"):])
                if sku is not None:
                    partition = sku.partition
            elif key.startswith("lane/"):
                partition = int(key.split("/", 2)[1])
            if value is None:
                ctx.stage_delete(self.name, key, partition)
            else:
                ctx.stage_put(self.name, key, value, partition)

    def _views_out(self, ctx: BatchContext) -> None:
        watermark = self.engine.watermark()
        if watermark is None:
            return
        skus = self._skus
        self._heatmap(ctx, skus)
        self._kpis(ctx, skus, watermark)
        minute = int(watermark.timestamp() // 60)
        if minute != self._last_minute:
            self._last_minute = minute
            self._delays_points(ctx, skus, minute)

    def _heatmap(self, ctx: BatchContext, skus: Mapping[str, _Sku]) -> None:
        cells: dict[str, _Cell] = {}
        for key, view in skus.items():
            fix = self.geo.fix_of(key)
            if fix is None:
                continue
            for res in HEATMAP_RESOLUTIONS:
                cell_id = fix.cell(res)
                if cell_id is None:
                    continue
                cell = cells.get(cell_id)
                if cell is None:
                    cell = cells[cell_id] = _Cell(res, fix.region)
                cell.skus += 1
                cell.orders.add(view.order_id)
                cell.counts[view.state.value] += 1
        items = {cell_id: cell.item(cell_id) for cell_id, cell in cells.items()}
        for cell_id, old in self._sent_cells.items():
            if cell_id not in items:  # emptied: tell the war-room once
                items[cell_id] = {**old, "skus": 0, "orders": 0, "at_risk": 0, "late": 0, "stalled": 0}
        for cell_id, item in sorted(items.items()):
            if self._sent_cells.get(cell_id) != item:
                ctx.emit(self.topics.warroom, orjson.dumps(item), cell_id.encode())
        self._sent_cells = {k: v for k, v in items.items() if v["skus"] > 0}

    def _kpis(self, ctx: BatchContext, in_flight: Mapping[str, _Sku], watermark: datetime) -> None:
        counts = Counter(v.state for v in in_flight.values())
        skus = len(in_flight)
        item = {
            "type": "kpis", "key": "national",
            "skus_in_flight": skus,
            "orders_in_flight": len({v.order_id for v in in_flight.values()}),
            "on_time_rate": round(counts[DelayState.ON_TRACK] / skus, 4) if skus else 1.0,
            "at_risk": counts[DelayState.AT_RISK], "late": counts[DelayState.LATE],
            "stalled": counts[DelayState.STALLED], "at": _iso(watermark),
        }
        ctx.emit(self.topics.warroom, orjson.dumps(item), b"national")

    def _delays_points(self, ctx: BatchContext, skus: Mapping[str, _Sku], minute: int) -> None:
        counts: Counter[tuple[str, str, str | None, str | None, str | None]] = Counter(
            (str(s.partition), s.state.value, s.region, s.carrier, s.warehouse) for s in skus.values())
        for (partition, state, region, carrier, warehouse), n in sorted(counts.items(), key=str):
            ctx.lines.append(line("delays", {"partition": partition, "state": state, "region": region,
                                             "carrier": carrier, "warehouse": warehouse},
                                  {"skus": n}, minute * 60 * 1_000_000_000))


__all__ = ["DelaysStage", "DelaysTopics"]
