"""The delays stage's war-room views (:mod:`stream.core.global_views`): per-timeline counters of
the in-flight SKUs, the ``heatmap`` and ``kpis`` partials they publish (at most once per
interval, coalesced) and the ``delays`` minute points written from what was published.

With a partials topic, each worker emits its partitions' partials and one owner per key
sums them (:mod:`stream.stages.views_agent`); without one (one process: tests, benches) the
stage sums them itself and publishes the global items on ``warroom-updates``. After a
restore the restored partitions are reset and re-published whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from stream.core.delays_engine import DelaysEngine
from stream.core.global_views import (
    Contribution,
    Published,
    ViewCounters,
    ViewsOwner,
    ViewsTopics,
    kpi_key,
    partial_record,
    reset_record,
)
from stream.core.sku_delay import DelayState
from stream.sinks.line_protocol import point_line
from stream.stage_api import BatchContext
from stream.stages.geo_stage import GeoStage

#: Stage-state prefix of a replay's entries (``replay/<id>/``).
REPLAY_PREFIX = "replay/"
_MINUTE_NS = 60 * 1_000_000_000


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class TrackedSku:
    """What the war-room outputs need of an in-flight SKU (kept from transitions, so the
    once-a-second outputs cost a dict walk rather than a view of every tracked SKU)."""

    order_id: str
    partition: int
    state: DelayState
    region: str | None
    carrier: str | None
    warehouse: str | None


@dataclass
class Timeline:
    """One clock's engine (live, or one replay) and what its war-room outputs last sent."""

    replay: str | None
    engine: DelaysEngine
    skus: dict[str, TrackedSku] = field(default_factory=dict)
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
        return "" if self.replay is None else f"{REPLAY_PREFIX}{self.replay}/"


class DelaysViews:
    """See the module doc."""

    def __init__(self, warroom: str, views: ViewsTopics | None, geo: GeoStage) -> None:
        self.warroom = warroom
        #: The views' two phases (``None``: summed here, one process only).
        self.views = views
        self.geo = geo
        #: Partitions to re-publish whole after a ``reset`` (restored), and partitions no
        #: longer owned whose partials the local sum drops (no partials topic only).
        self.republish: set[int] = set()
        self.dropped: set[int] = set()
        #: The second phase in this process when there is no partials topic.
        self.local = ViewsOwner({}) if views is None else None

    def refresh(self, timeline: Timeline) -> None:
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

    def resets(self, ctx: BatchContext) -> None:
        """After a restore: drop the partials of the partitions restored (and, summing
        locally, of those no longer owned) before they are published whole again."""
        for partition in sorted(self.republish | self.dropped):
            record = reset_record(partition)
            views = self.views
            if views is None:
                self._publish_global(ctx, self._local_apply(record))
            elif partition in self.republish:
                for target in range(views.partitions):
                    ctx.emit(
                        views.partials,
                        orjson.dumps(record),
                        f"reset/{partition}".encode(),
                        partition=target,
                        source_partition=partition,
                    )
        self.republish.clear()
        self.dropped.clear()

    def _local_apply(self, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
        assert self.local is not None
        return self.local.apply(record, 0)

    def _publish_global(self, ctx: BatchContext, items: Mapping[str, dict[str, Any]]) -> None:
        for key, item in sorted(items.items()):
            ctx.emit(self.warroom, orjson.dumps(item), key.encode())

    def publish(self, ctx: BatchContext, timeline: Timeline, partitions: set[int]) -> None:
        """The timeline's changed partials (every one of the owned ``partitions``' KPIs), and
        its minute points when its watermark's minute moved on."""
        watermark = timeline.engine.watermark()
        if watermark is None:
            return
        minute = int(watermark.timestamp() // 60)
        if minute != timeline.last_minute and timeline.last_minute is not None:
            # the closed minute's final state
            ctx.lines.extend(
                map(point_line, timeline.published.minute_points(timeline.last_minute * _MINUTE_NS, timeline.replay))
            )
        partials = self._changed_partials(timeline, iso(watermark), partitions)
        if minute != timeline.last_minute:
            timeline.last_minute = minute
            ctx.lines.extend(map(point_line, timeline.published.minute_points(minute * _MINUTE_NS, timeline.replay)))
        views = self.views
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

    def _changed_partials(self, timeline: Timeline, at: str, partitions: set[int]) -> list[tuple[int, dict[str, Any]]]:
        # Every owned partition's KPIs, also unchanged ones: their time moves on.
        sources = set() if timeline.replay is not None else partitions
        extra: dict[str, Any] = {"at": at}
        if timeline.replay is not None:
            # a replay is shown in its own time range, as of its own clock
            extra["replay"] = timeline.replay
            if timeline.first_event is not None:
                extra["from"] = iso(datetime.fromtimestamp(timeline.first_event, UTC))
        return timeline.published.changed(timeline.counters, kpi_key(timeline.replay), extra, sources)


__all__ = ["REPLAY_PREFIX", "DelaysViews", "Timeline", "TrackedSku", "iso"]
