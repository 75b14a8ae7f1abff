"""Delays stage: drives :class:`stream.delays_engine.DelaysEngine` from the batch pipeline.

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
  (:mod:`stream.global_views`): counters kept from each batch's changed SKUs (a SKU's old
  contribution out, its new one in), whose changed partials go at most once per
  ``interval_s`` (coalesced) to ``warroom-partials``, where one owner per key sums them
  into the global item on ``warroom-updates`` (:mod:`stream.stages.views_agent`); without a
  partials topic (one process: tests, benches) the stage sums them itself;
- each scanned order's ``eta`` extension (:mod:`stream.order_eta`), recomputed on every scan
  and delay transition;
- the sync lag of each source (arrival minus event time, :mod:`stream.sync_lag`): a
  ``sync_lag`` point per source, partition and arrival minute, and ``sync_lag`` war-room
  items per source over the last minutes.

Replays (:mod:`stream.replay`): records of ``orderradar import --replay`` are judged by an
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
(see :mod:`stream.global_views`). Positions are not restored (the geo stage learns them
from traffic), so until a SKU's next scan it counts in the KPIs but in no heatmap cell.
One engine serves all partitions of the worker: with several workers each has its own
detectors (see :mod:`stream.delays_engine` for the single-detector deployment).
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from stream.contract import CLOSED, Crs, OrderEvent
from stream.data_quality import IllegalTransition, future_rejection
from stream.delays_engine import DelaysEngine, DelaysResult
from stream.global_views import (
    Contribution,
    Published,
    ViewCounters,
    ViewsOwner,
    ViewsTopics,
    kpi_key,
    partial_record,
    reset_record,
)
from stream.incident_model import IncidentChange
from stream.lifecycle import Outcome
from stream.order_eta import ETA_EXTENSION, order_eta
from stream.replay import replay_of
from stream.sinks.line_protocol import line, point_time_ns
from stream.sinks.outbox import Outbox
from stream.sku_delay import DelayState, sku_key
from stream.sla import SlaRules, load_sla_rules
from stream.stage_api import Accepted, BatchContext, SourceRecord
from stream.stages.geo_stage import GeoStage
from stream.stages.views_agent import install_views_owner
from stream.sync_lag import SyncLag

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


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


_REPLAY_PREFIX = "replay/"
_MINUTE_NS = 60 * 1_000_000_000


@dataclass
class _Timeline:
    """One clock's engine (live, or one replay) and what its war-room outputs last sent."""

    replay: str | None
    engine: DelaysEngine
    skus: dict[str, _Sku] = field(default_factory=dict)
    #: Per-partition counters of the views; ETA slips are known from the ETAs recomputed
    #: since the worker started.
    counters: ViewCounters = field(default_factory=ViewCounters)
    #: SKUs whose contribution to the counters may have changed since they were updated.
    touched: set[str] = field(default_factory=set)
    #: What the last output published: a minute's points are written from it when the
    #: minute closes, so they hold its final state (the war-room's time travel reads them).
    published: Published = field(default_factory=Published)
    last_minute: int | None = None
    pending: bool = False
    first_event: float | None = None  # a replay's earliest event time (its range in the war-room)
    #: Order id -> end of its ETA window (epoch s): a window that has passed without a scan
    #: is moved on by the tick (once a minute), so the page never promises the past.
    eta_ends: dict[str, float] = field(default_factory=dict)
    overdue_checked: float = 0.0

    @property
    def prefix(self) -> str:
        return "" if self.replay is None else f"{_REPLAY_PREFIX}{self.replay}/"


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
        self.timelines: dict[str | None, _Timeline] = {None: _Timeline(None, DelaysEngine(rules))}
        self._core_partition = 0
        self._last_sent = -1e18
        #: Last WGS-84 position of each node (hub, station), for incident root causes.
        self.nodes: dict[str, tuple[float, float]] = {}
        self.sync_lag = SyncLag()
        #: Source partitions this worker owns (from restore, and from the traffic seen).
        self.partitions: set[int] = set()
        #: Partitions to re-publish whole after a ``reset`` (restored), and partitions no
        #: longer owned whose partials the local sum drops (no partials topic only).
        self._republish: set[int] = set()
        self._dropped: set[int] = set()
        #: The second phase in this process when there is no partials topic.
        self.local_views = ViewsOwner({}) if topics.views is None else None

    @property
    def engine(self) -> DelaysEngine:
        """The live engine."""
        return self.timelines[None].engine

    def _timeline(self, replay: str | None, now: datetime) -> _Timeline:
        timeline = self.timelines.get(replay)
        if timeline is None:
            timeline = self.timelines[replay] = _Timeline(replay, DelaysEngine(self.rules, replay))
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
            if name.startswith(_REPLAY_PREFIX):
                import_id, _, rest = name[len(_REPLAY_PREFIX) :].partition("/")
                by_replay.setdefault(import_id, {})[rest] = value
            else:
                by_replay[None][name] = value
        self._core_partition = min(partitions) if partitions else 0
        self._dropped |= self.partitions - partitions
        self.partitions = set(partitions)
        self._republish = set(partitions)
        self.timelines = {}
        for replay, found in by_replay.items():
            timeline = self.timelines[replay] = _Timeline(replay, DelaysEngine.from_entries(self.rules, found, replay))
            timeline.engine.expect_partitions(partitions)
            core = found.get("core") or {}
            timeline.first_event = core.get("first_event")
            engine = timeline.engine
            for view in engine.views():
                sku = engine.tracker.get(sku_key(view.order_id, view.sku))
                if not view.closed and sku is not None:
                    lane = view.lane
                    timeline.skus[sku_key(view.order_id, view.sku)] = _Sku(
                        view.order_id, sku.partition, view.state, lane.region, lane.carrier, lane.warehouse
                    )
            timeline.touched = set(timeline.skus)  # the counters, once from the restored state
            self._refresh(timeline)
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
        data-quality findings (``stream.data_quality.future_rejection``)."""
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
        self, ctx: BatchContext, timeline: _Timeline, result: DelaysResult, scanned: Mapping[str, int | None]
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
    def _inputs(self, timeline: _Timeline, items: list[Accepted]) -> list[OrderEvent | IllegalTransition]:
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
                timeline.skus[key] = _Sku(
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
    def _publish(self, ctx: BatchContext, timeline: _Timeline, result: DelaysResult) -> None:
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
                timeline.skus[transition.key] = _Sku(
                    transition.order_id, partition, transition.state, lane.region, lane.carrier, lane.warehouse
                )
            else:
                known.state = transition.state
                known.region, known.carrier, known.warehouse = lane.region, lane.carrier, lane.warehouse
        self._refresh(timeline)
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
        self._resets(ctx)
        for timeline in self.timelines.values():
            if timeline.pending:
                timeline.pending = False
                self._views_out(ctx, timeline)
        for figures in self.sync_lag.window(ctx.now.timestamp()):
            item = {
                "type": "sync_lag",
                "key": figures.source,
                "source": figures.source,
                **figures.fields(),
                "window_s": self.sync_lag.window_s,
                "at": _iso(ctx.now),
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
        point = incident.to_influx()
        # What the war-room's time travel draws of an incident as of a past minute.
        where = {**(record.get("location") or {}), **root}
        fields = {
            **point["fields"],
            "title": record.get("title"),
            "opened_at": record.get("opened_at"),
            "lat": where.get("lat"),
            "lon": where.get("lon"),
        }
        ctx.lines.append(line("incidents", point["tags"], fields, point_time_ns(point["time_ns"], rank)))

    def _persist(self, ctx: BatchContext, timeline: _Timeline) -> None:
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

    # -- the war-room views (stream.global_views) -----------------------------------------
    def _refresh(self, timeline: _Timeline) -> None:
        """Put the touched SKUs' contributions into the counters (old out, new in)."""
        counters, skus, live = timeline.counters, timeline.skus, timeline.replay is None
        for key in timeline.touched:
            sku = skus.get(key)
            if sku is None:
                counters.set(key, None)
                continue
            fix = self.geo.fix_of(key) if live else None  # a replay is left out of the heatmap
            cells = tuple((res, cell, fix.region) for res, cell in fix.cells) if fix is not None else ()
            counters.set(
                key,
                Contribution(
                    sku.partition, sku.order_id, sku.state.value, (sku.region, sku.carrier, sku.warehouse), cells
                ),
            )
        timeline.touched.clear()

    def _resets(self, ctx: BatchContext) -> None:
        """After a restore: drop the partials of the partitions restored (and, summing
        locally, of those no longer owned) before they are published whole again."""
        for partition in sorted(self._republish | self._dropped):
            record = reset_record(partition)
            views = self.topics.views
            if views is None:
                self._publish_global(ctx, self._local_apply(record))
            elif partition in self._republish:
                for target in range(views.partitions):
                    ctx.emit(
                        views.partials,
                        orjson.dumps(record),
                        f"reset/{partition}".encode(),
                        partition=target,
                        source_partition=partition,
                    )
        self._republish.clear()
        self._dropped.clear()

    def _local_apply(self, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
        assert self.local_views is not None
        return self.local_views.apply(record, 0)

    def _publish_global(self, ctx: BatchContext, items: Mapping[str, dict[str, Any]]) -> None:
        for key, item in sorted(items.items()):
            ctx.emit(self.topics.warroom, orjson.dumps(item), key.encode())

    def _views_out(self, ctx: BatchContext, timeline: _Timeline) -> None:
        watermark = timeline.engine.watermark()
        if watermark is None:
            return
        minute = int(watermark.timestamp() // 60)
        if minute != timeline.last_minute and timeline.last_minute is not None:
            # the closed minute's final state
            ctx.lines.extend(timeline.published.minute_lines(timeline.last_minute * _MINUTE_NS, timeline.replay))
        partials = self._changed_partials(timeline, _iso(watermark))
        if minute != timeline.last_minute:
            timeline.last_minute = minute
            ctx.lines.extend(timeline.published.minute_lines(minute * _MINUTE_NS, timeline.replay))
        views = self.topics.views
        if views is None:
            changed: dict[str, dict[str, Any]] = {}
            for source, item in partials:
                changed.update(self._local_apply(partial_record(item, source)))
            self._publish_global(ctx, changed)
            return
        for source, item in partials:
            ctx.emit(
                views.partials,
                orjson.dumps(partial_record(item, source)),
                item["key"].encode(),
                source_partition=source,
            )

    def _changed_partials(self, timeline: _Timeline, at: str) -> list[tuple[int, dict[str, Any]]]:
        # Every owned partition's KPIs, also unchanged ones: their time moves on.
        sources = set() if timeline.replay is not None else self.partitions
        extra: dict[str, Any] = {"at": at}
        if timeline.replay is not None:
            # a replay is shown in its own time range, as of its own clock
            extra["replay"] = timeline.replay
            if timeline.first_event is not None:
                extra["from"] = _iso(datetime.fromtimestamp(timeline.first_event, UTC))
        return timeline.published.changed(timeline.counters, kpi_key(timeline.replay), extra, sources)


__all__ = ["DelaysStage", "DelaysTopics"]
