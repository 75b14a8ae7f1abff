"""Delays stage: drives :class:`stream.core.delays_engine.DelaysEngine` from the batch pipeline.

Per batch (and on idle ticks) it feeds the accepted events of each partition, with their
positions converted to WGS-84 by the :class:`~stream.stages.geo_stage.GeoStage`, and
publishes what the engine decided:

- incident lifecycle events on ``order-incidents`` (key ``incident_id``) and as
  ``incidents`` points; also forwarded to the alerting inputs topic when configured;
- a ``delays`` point per minute (SKUs by state, tags partition/state/region/carrier/warehouse),
  ``delays_orders`` (orders in flight per partition) and ``delay_cells`` (the heatmap per
  partition and H3 cell); a minute's points are rewritten with its final state when it closes;
- the war-room's ``heatmap`` items (H3 res 3 and 5) and ``kpis`` item, with ``eta_slips``
  (orders whose ETA window ends after their promise), as per-partition partials
  (:mod:`stream.core.global_views`, from :mod:`stream.stages.delays_views`): counters kept from
  each batch's changed SKUs (a SKU's old contribution out, its new one in), whose changed partials go at most once per
  ``interval_s`` (coalesced) to ``warroom-partials``, where one owner per key sums them
  into the global item on ``warroom-updates`` (:mod:`stream.stages.views_agent`); without a
  partials topic (one process: tests, benches) the stage sums them itself;
- each scanned order's ``eta`` extension (:mod:`stream.core.order_eta`), recomputed on every scan
  and delay transition;
- the sync lag of each source (arrival minus event time, :mod:`stream.core.sync_lag`): a
  ``sync_lag`` point per source, partition and arrival minute, and ``sync_lag`` war-room
  items per source over the last minutes.

Replays (:mod:`stream.core.replay`): records of ``orderradar import --replay`` are judged by an
engine of their own per replay id (their own event-time clock, never the wall clock, never
mixed with live SKUs). Their orders carry the ``replay`` extension (set by the pipeline
core, which also ages them in the replay's time); their incidents carry
``"replay": <id>`` (the alerting agent records but never pages them); their ``kpis`` item
is keyed ``replay:<id>`` and stamped with the replay's own time range; their ``delays``
points carry the tag ``replay``. They are left out of the heatmap and of the sync lag.

State: :meth:`DelaysEngine.take_dirty` entries as stage state (SKU entries to their SKU's
partition, lane histograms to theirs, the ``core`` entry to the lowest owned partition);
a replay's entries under ``replay/<id>/``. The view counters are derived from it once on
restore; the partitions restored are then re-published whole, after a ``reset`` of each
(see :mod:`stream.core.global_views`). Positions are not restored (the geo stage learns them
from traffic), so until a SKU's next scan it counts in the KPIs but in no heatmap cell.
One engine serves all partitions of the worker: with several workers each has its own
detectors (see :mod:`stream.core.delays_engine` for the single-detector deployment).
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from stream.contract import CLOSED, Crs, OrderEvent
from stream.core.data_quality import IllegalTransition, future_rejection
from stream.core.delays_engine import DelaysEngine, DelaysResult
from stream.core.global_views import (
    ViewsTopics,
)
from stream.core.incident_model import IncidentChange
from stream.core.lifecycle import Outcome
from stream.core.order_eta import ETA_EXTENSION, order_eta
from stream.core.replay import replay_of
from stream.core.sku_delay import DelayState, sku_key
from stream.core.sla import SlaRules, load_sla_rules
from stream.core.sync_lag import SyncLag
from stream.sinks.line_protocol import incident_line, line
from stream.sinks.outbox import Outbox
from stream.stage_api import Accepted, BatchContext, SourceRecord
from stream.stages.delays_views import REPLAY_PREFIX, DelaysViews, Timeline, TrackedSku, iso
from stream.stages.geo_stage import GeoStage
from stream.stages.views_agent import install_views_owner

log = logging.getLogger(__name__)

_BAD = (DelayState.AT_RISK, DelayState.LATE, DelayState.STALLED)


@dataclass(frozen=True)
class DelaysTopics:
    incidents: str
    warroom: str
    #: One-partition topic of the alerting agent (``None``: no alerting).
    alert_inputs: str | None = None
    #: The views' two phases (``None``: this process sums the partials itself and
    #: publishes the global items; one process only).
    views: ViewsTopics | None = None


def _received(record: SourceRecord, now: float) -> float:
    """When the broker received the record (its timestamp), else ``now``."""
    return record.timestamp_ms / 1000 if record.timestamp_ms else now


def _merged(by_partition: Mapping[int, list[Accepted]], now: float, replay: bool) -> list[Accepted]:
    """A timeline's records of several partitions, each partition in its order, the head
    with the lowest time first (Kafka Streams' partition group): a timeline's clock then
    moves with time, not with the order a fetch returned the partitions. Time is the
    record's receipt time, for a replay its event time (the replay's clock)."""
    if len(by_partition) == 1:
        return next(iter(by_partition.values()))

    def time_of(item: Accepted) -> float:
        if replay:
            return item.event.event_time.timestamp()
        return _received(item.record, now)

    return list(heapq.merge(*(by_partition[p] for p in sorted(by_partition)), key=time_of))


class DelaysStage:
    """See the module doc."""

    name = "delays"

    def __init__(
        self,
        rules: SlaRules,
        topics: DelaysTopics,
        geo: GeoStage,
        *,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rules = rules
        self.topics = topics
        self.geo = geo
        self.interval_s = interval_s
        self.clock = clock
        #: Live traffic under ``None``, each replay under its id.
        self.timelines: dict[str | None, Timeline] = {None: Timeline(None, DelaysEngine(rules))}
        self._core_partition = 0
        self._last_sent = -1e18
        #: Last WGS-84 position of each node (hub, station), for incident root causes.
        self.nodes: dict[str, tuple[float, float]] = {}
        self.sync_lag = SyncLag()
        #: Source partitions this worker owns (from restore, and from the traffic seen).
        self.partitions: set[int] = set()
        self.views = DelaysViews(topics.warroom, topics.views, geo)

    @property
    def engine(self) -> DelaysEngine:
        """The live engine."""
        return self.timelines[None].engine

    def _timeline(self, replay: str | None, now: datetime) -> Timeline:
        timeline = self.timelines.get(replay)
        if timeline is None:
            timeline = self.timelines[replay] = Timeline(replay, DelaysEngine(self.rules, replay))
            # its clock waits for every partition of the worker (a silent one for idle_after)
            timeline.engine.expect_partitions(self.partitions, now)
        return timeline

    @classmethod
    def from_file(cls, topics: DelaysTopics, geo: GeoStage, **kwargs: Any) -> DelaysStage:
        return cls(load_sla_rules(), topics, geo, **kwargs)

    # -- pipeline hooks -----------------------------------------------------------
    def install(self, app: Any, producer: Outbox, on_fatal: Callable[[BaseException], None]) -> None:
        """The worker's hook for agents of a stage: the owners of the global views."""
        if self.topics.views is not None:
            install_views_owner(app, self.topics.views, self.topics.warroom, producer, on_fatal)

    async def restore(self, entries: Mapping[str, Any], partitions: set[int]) -> None:
        by_replay: dict[str | None, dict[str, Any]] = {None: {}}
        for name, value in entries.items():
            if name.startswith(REPLAY_PREFIX):
                import_id, _, rest = name[len(REPLAY_PREFIX) :].partition("/")
                by_replay.setdefault(import_id, {})[rest] = value
            else:
                by_replay[None][name] = value
        self._core_partition = min(partitions) if partitions else 0
        self.views.dropped |= self.partitions - partitions
        self.partitions = set(partitions)
        self.views.republish = set(partitions)
        self.timelines = {}
        for replay, found in by_replay.items():
            timeline = self.timelines[replay] = Timeline(replay, DelaysEngine.from_entries(self.rules, found, replay))
            timeline.engine.expect_partitions(partitions)
            core = found.get("core") or {}
            timeline.first_event = core.get("first_event")
            engine = timeline.engine
            for view in engine.views():
                sku = engine.tracker.get(sku_key(view.order_id, view.sku))
                if not view.closed and sku is not None:
                    lane = view.lane
                    timeline.skus[sku_key(view.order_id, view.sku)] = TrackedSku(
                        view.order_id, sku.partition, view.state, lane.region, lane.carrier, lane.warehouse
                    )
            timeline.touched = set(timeline.skus)  # the counters, once from the restored state
            self.views.refresh(timeline)
            timeline.pending = True

    async def process(self, ctx: BatchContext) -> None:
        by_timeline: dict[str | None, dict[int, list[Accepted]]] = {}
        for item in ctx.accepted:
            replay = replay_of(item.record.headers)
            if replay is None and item.record.timestamp_ms:
                event = item.event
                self.sync_lag.observe(
                    event.source,
                    event.event_time.timestamp(),
                    item.record.timestamp_ms / 1000,
                    item.record.partition,
                )
            by_timeline.setdefault(replay, {}).setdefault(item.record.partition, []).append(item)
            self.partitions.add(item.record.partition)
        for replay, by_partition in by_timeline.items():
            timeline = self._timeline(replay, ctx.now)
            timeline.pending = True
            now = ctx.now.timestamp()
            items = _merged(by_partition, now, replay is not None)
            if replay is not None:
                first = min(a.event.event_time.timestamp() for a in items)
                if timeline.first_event is None or first < timeline.first_event:
                    timeline.first_event = first
            received = [_received(a.record, now) for a in items]
            result = timeline.engine.process(
                self._inputs(timeline, items),
                now=ctx.now,
                received_at=received,
                partitions=[a.record.partition for a in items],
            )
            self._publish(ctx, timeline, result)
            offsets = {a.event.order_id: a.event.event_time.utcoffset() for p in by_partition.values() for a in p}
            self._etas(
                ctx,
                timeline,
                result,
                {o: int(d.total_seconds() // 60) if d is not None else None for o, d in offsets.items()},
            )
        self._rejected(ctx)
        if None not in by_timeline:
            self._tick(ctx)
        self._outputs(ctx)

    def _rejected(self, ctx: BatchContext) -> None:
        """Live events dead-lettered for a time over a day ahead still name their device:
        data-quality findings (``stream.core.data_quality.future_rejection``)."""
        result = DelaysResult()
        for record, letter in ctx.dead_letters:
            rejected = future_rejection(letter)
            if rejected is not None and replay_of(record.headers) is None:
                event, reason = rejected
                received = _received(record, ctx.now.timestamp())
                result.extend(self.engine.reject(event, partition=record.partition, received=received, reason=reason))
        if result.findings:
            self._publish(ctx, self.timelines[None], result)

    async def tick(self, ctx: BatchContext) -> None:
        self._tick(ctx)
        self._outputs(ctx)

    def _tick(self, ctx: BatchContext) -> None:
        # Only live traffic follows the wall clock; a replay's clock is its own events (its
        # tick only stops waiting for partitions without records of it).
        for replay, other in self.timelines.items():
            if replay is not None:
                self._publish(ctx, other, other.engine.tick(ctx.now))
        timeline = self.timelines[None]
        result = self.engine.tick(ctx.now)
        self._publish(ctx, timeline, result)
        clock = ctx.now.timestamp()
        overdue: dict[str, int | None] = {}
        if clock - timeline.overdue_checked >= 60:
            timeline.overdue_checked = clock
            overdue = {order_id: None for order_id, end in timeline.eta_ends.items() if end <= clock}
        self._etas(ctx, timeline, result, overdue)

    def _etas(
        self, ctx: BatchContext, timeline: Timeline, result: DelaysResult, scanned: Mapping[str, int | None]
    ) -> None:
        """Recompute the ``eta`` extension of the orders scanned (``scanned``: order id ->
        the UTC offset of its events, minutes) or whose delay state changed."""
        engine = timeline.engine
        if timeline.replay is None:
            now = ctx.now
        elif engine.replay_now is not None:
            now = datetime.fromtimestamp(engine.replay_now, UTC)
        else:
            return
        order_ids = dict(scanned)
        for transition in result.transitions:
            order_ids.setdefault(transition.order_id, None)
        for order_id, offset in order_ids.items():
            order = ctx.order(order_id)
            if order is None:  # expired meanwhile
                timeline.eta_ends.pop(order_id, None)
                timeline.counters.set_slip(order_id, None)
                continue
            old = order.extensions.get(ETA_EXTENSION)
            if offset is None:
                offset = old.get("tz_offset_min", 0) if isinstance(old, dict) else 0
            new = order_eta(engine, order, now, offset)
            timeline.counters.set_slip(order_id, order.partition if new is not None and new["slipped"] else None)
            if new is None:
                timeline.eta_ends.pop(order_id, None)
            else:
                timeline.eta_ends[order_id] = datetime.fromisoformat(new["to"]).timestamp()
            if new != old:
                timeline.pending = True
                ctx.update_order(order.with_extension(ETA_EXTENSION, new))

    # -- inputs -------------------------------------------------------------------
    def _inputs(self, timeline: Timeline, items: list[Accepted]) -> list[OrderEvent | IllegalTransition]:
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
            timeline.touched.add(key)
            if change.after.status in CLOSED:  # the SKU's status, not a late event's
                timeline.skus.pop(key, None)
            elif key not in timeline.skus:
                timeline.skus[key] = TrackedSku(
                    event.order_id,
                    item.record.partition,
                    DelayState.ON_TRACK,
                    event.region,
                    event.carrier,
                    event.warehouse,
                )
            if change.outcome is Outcome.ILLEGAL:
                before = change.before.status if change.before is not None else None
                out.append(IllegalTransition(event, before, change.illegal_reason or "illegal transition"))
            else:
                out.append(event)
        return out

    # -- outputs ------------------------------------------------------------------
    def _publish(self, ctx: BatchContext, timeline: Timeline, result: DelaysResult) -> None:
        # A detector emits all events of an evaluation slot together (one ``at``), several
        # with the same tags: their rank among them keeps their points apart.
        ranks: Counter[float] = Counter()
        for incident in result.incidents:
            self._incident(ctx, incident, ranks[incident.at])
            ranks[incident.at] += 1
        for transition in result.transitions:
            timeline.touched.add(transition.key)
            if transition.closed:
                self.geo.forget(transition.key)
                timeline.skus.pop(transition.key, None)
                continue
            lane = transition.lane
            known = timeline.skus.get(transition.key)
            if known is None:
                tracked = timeline.engine.tracker.get(transition.key)
                partition = tracked.partition if tracked is not None else self._core_partition
                timeline.skus[transition.key] = TrackedSku(
                    transition.order_id, partition, transition.state, lane.region, lane.carrier, lane.warehouse
                )
            else:
                known.state = transition.state
                known.region, known.carrier, known.warehouse = lane.region, lane.carrier, lane.warehouse
        self.views.refresh(timeline)
        self._persist(ctx, timeline)
        if result.transitions or result.incidents:
            timeline.pending = True

    def _outputs(self, ctx: BatchContext) -> None:
        for minute, partition, figures in self.sync_lag.take_minutes():
            ctx.lines.append(
                line(
                    "sync_lag",
                    {"source": figures.source, "partition": str(partition)},
                    figures.fields(),
                    minute * 60 * 1_000_000_000,
                )
            )
        now = self.clock()
        if now - self._last_sent < self.interval_s:
            return
        self._last_sent = now
        self.views.resets(ctx)
        for timeline in self.timelines.values():
            if timeline.pending:
                timeline.pending = False
                self.views.publish(ctx, timeline, self.partitions)
        for figures in self.sync_lag.window(ctx.now.timestamp()):
            item = {
                "type": "sync_lag",
                "key": figures.source,
                "source": figures.source,
                **figures.fields(),
                "window_s": self.sync_lag.window_s,
                "at": iso(ctx.now),
            }
            ctx.emit(self.topics.warroom, orjson.dumps(item), f"sync_lag/{figures.source}".encode())

    def _incident(self, ctx: BatchContext, incident: IncidentChange, rank: int) -> None:
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
        ctx.lines.append(incident_line(incident, record, rank))

    def _persist(self, ctx: BatchContext, timeline: Timeline) -> None:
        engine = timeline.engine
        for key, value in engine.take_dirty().items():
            partition = self._core_partition
            if key.startswith("sku/"):
                sku = engine.tracker.get(key[len("sku/") :])
                if sku is not None:
                    partition = sku.partition
            elif key.startswith("lane/"):
                partition = int(key.split("/", 2)[1])
            elif key == "core" and value is not None and timeline.first_event is not None:
                value = {**value, "first_event": timeline.first_event}
            if value is None:
                ctx.stage_delete(self.name, timeline.prefix + key, partition)
            else:
                ctx.stage_put(self.name, timeline.prefix + key, value, partition)


__all__ = ["DelaysStage", "DelaysTopics"]
