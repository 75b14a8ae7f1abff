"""Per-minute aggregates of one source partition (pure: no I/O, no clock).

Four InfluxDB series, each tagged with the source ``partition`` so that workers owning
different partitions never overwrite each other's points (queries sum over partitions):

- ``throughput``: accepted events per event-time minute, by ``status`` and ``region``;
- ``dwell``: time spent at a node, from consecutive events of a SKU (the time between an
  event at node N and the SKU's next event), attributed to the minute of the later event,
  fields ``count``, ``total_s`` and ``mean_s``, tagged ``node``;
- ``inflight``: SKUs not yet closed by current ``status`` and ``region``, sampled at the
  minute of the partition's watermark (its newest event time) every time it changes;
- ``missing_scans`` (data quality): per event-time minute, by ``source``, ``node`` and
  ``device``, fields ``scans`` (legal events) and ``missing`` (ladder stages they skipped,
  see ``stream.core.lifecycle``); rate = missing / (missing + scans). A late scan that fills a
  gap rewrites the counts of the entry after it.

Timestamps are minute buckets, so a minute is rewritten with its newest value until it is
final (last write wins); the values are a function of the order states, which is why
:meth:`PartitionAggregates.rebuild` recomputes them exactly from the recovered table after
a restart or rebalance and marks every minute for rewriting. Minutes older than the window
(``window_minutes`` behind the watermark) are final: events that late still get their
``sku_events`` point but no longer change the aggregates.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stream.core.lifecycle import EventChange, entry_changes
from stream.core.order_state import OrderState, SkuState, ns_datetime
from stream.core.points import Point
from stream.core.timeline_pack import TimelineEntry

THROUGHPUT = "throughput"
DWELL = "dwell"
INFLIGHT = "inflight"
#: Missing scans (data quality): per minute and (source, node, device), the legal events
#: (``scans``) and the ladder stages they skipped (``missing``); see ``stream.core.lifecycle``.
MISSING_SCANS = "missing_scans"

MINUTE_NS = 60 * 1_000_000_000

#: (status, region) of a SKU line.
Key = tuple[str, str | None]


def minute_of(time_ns: int) -> int:
    return time_ns - time_ns % MINUTE_NS


def inflight_key(sku: SkuState | None) -> Key | None:
    if sku is None or sku.closed:
        return None
    return (sku.status.value, sku.facts.region)


class PartitionAggregates:
    """The open minutes of one partition's aggregates, and its in-flight gauge."""

    def __init__(self, partition: int, window_minutes: int = 120) -> None:
        self.partition = partition
        self.window_ns = window_minutes * MINUTE_NS
        self.watermark_ns = 0
        self.inflight: dict[Key, int] = {}
        #: Gauge keys changed since the last sample (zeros must be written once).
        self._touched: set[Key] = set()
        self.throughput: dict[int, dict[Key, int]] = {}
        #: minute -> node -> [count, total seconds]
        self.dwell: dict[int, dict[str, list[float]]] = {}
        #: minute -> (source, node, device) -> [scans, missing]
        self.scans: dict[int, dict[tuple[str, str | None, str | None], list[int]]] = {}
        #: Minutes whose points must be (re)written.
        self.dirty: set[int] = set()
        self._sample_due = False
        #: Minute of the last in-flight sample written.
        self.sampled_minute = -1

    # -- input --------------------------------------------------------------------------

    @property
    def window_start(self) -> int:
        return minute_of(self.watermark_ns) - self.window_ns

    def observe(self, change: EventChange) -> None:
        """Account for one accepted event (call in partition order)."""
        entry = change.entry
        if entry.time_ns > self.watermark_ns:
            self.watermark_ns = entry.time_ns
            self._sample_due = True
        for changed, sign in entry_changes(change):
            self._scan(changed, sign)
        if change.recorded:
            self._count(entry, 1)
            if change.previous is not None and change.following is not None:
                self._pair(change.previous, change.following, -1)
            if change.previous is not None:
                self._pair(change.previous, entry, 1)
            if change.following is not None:
                self._pair(entry, change.following, 1)
        before, after = inflight_key(change.before), inflight_key(change.after)
        if before != after:
            if before is not None:
                self._gauge(before, -1)
            if after is not None:
                self._gauge(after, 1)

    def _count(self, entry: TimelineEntry, delta: int) -> None:
        minute = minute_of(entry.time_ns)
        if minute < self.window_start:
            return
        bucket = self.throughput.setdefault(minute, {})
        key = (entry.status.value, entry.region)
        bucket[key] = bucket.get(key, 0) + delta
        self.dirty.add(minute)

    def _scan(self, entry: TimelineEntry, sign: int) -> None:
        if entry.illegal is not None:
            return
        minute = minute_of(entry.time_ns)
        if minute < self.window_start:
            return
        cell = self.scans.setdefault(minute, {}).setdefault((entry.source, entry.node, entry.device), [0, 0])
        cell[0] += sign
        cell[1] += sign * len(entry.skipped)
        self.dirty.add(minute)

    def _pair(self, first: TimelineEntry, second: TimelineEntry, sign: int) -> None:
        if first.node is None:
            return
        minute = minute_of(second.time_ns)
        if minute < self.window_start:
            return
        cell = self.dwell.setdefault(minute, {}).setdefault(first.node, [0.0, 0.0])
        cell[0] += sign
        cell[1] += sign * (second.time_ns - first.time_ns) / 1e9
        self.dirty.add(minute)

    def _gauge(self, key: Key, delta: int) -> None:
        self.inflight[key] = self.inflight.get(key, 0) + delta
        self._touched.add(key)
        self._sample_due = True

    # -- output -------------------------------------------------------------------------

    def _minute_points(self, minute: int) -> list[Point]:
        p = str(self.partition)
        out = [
            Point(THROUGHPUT, {"partition": p, "region": region, "status": status}, {"count": count}, minute)
            for (status, region), count in self.throughput.get(minute, {}).items()
        ]
        for node, (count, total) in self.dwell.get(minute, {}).items():
            n = int(round(count))
            if n <= 0:
                continue
            fields = {"count": n, "total_s": round(total, 3), "mean_s": round(total / n, 3)}
            out.append(Point(DWELL, {"node": node, "partition": p}, fields, minute))
        for (source, scan_node, device), (scans, missing) in self.scans.get(minute, {}).items():
            tags = {"device": device, "node": scan_node, "partition": p, "source": source}
            out.append(Point(MISSING_SCANS, tags, {"missing": missing, "scans": scans}, minute))
        return out

    @property
    def sample_minute(self) -> int:
        return minute_of(self.watermark_ns)

    def pending_points(self, sample: bool = True) -> list[Point]:
        """Points of the minutes changed since the last successful write, and (``sample``)
        an in-flight sample at the watermark's minute if the gauge or the watermark moved.
        The caller samples at least once per event-time minute (see ``stream.pipeline``)."""
        out: list[Point] = []
        for minute in sorted(self.dirty):
            out.extend(self._minute_points(minute))
        if sample and self._sample_due and self.watermark_ns:
            p, minute = str(self.partition), minute_of(self.watermark_ns)
            keys = {k for k, v in self.inflight.items() if v} | self._touched
            out.extend(
                Point(
                    INFLIGHT,
                    {"partition": p, "region": region, "status": status},
                    {"count": self.inflight.get((status, region), 0)},
                    minute,
                )
                for status, region in sorted(keys, key=lambda k: (k[0], k[1] or ""))
            )
        return out

    def mark_written(self, sampled: bool = True) -> None:
        """The points of :meth:`pending_points` are in InfluxDB."""
        self.dirty.clear()
        if sampled:
            self._sample_due = False
            self.sampled_minute = minute_of(self.watermark_ns)
            for key in self._touched:
                if not self.inflight.get(key):
                    self.inflight.pop(key, None)
            self._touched.clear()

    def expire(self) -> list[Point]:
        """Drop minutes that left the window; return the final points of those not yet
        written (the caller dead-letters them for replay: being final, replaying them late
        cannot overwrite a newer value)."""
        start = self.window_start
        old = [m for m in set(self.throughput) | set(self.dwell) | set(self.scans) if m < start]
        out: list[Point] = []
        for minute in sorted(old):
            if minute in self.dirty:
                out.extend(self._minute_points(minute))
                self.dirty.discard(minute)
            self.throughput.pop(minute, None)
            self.dwell.pop(minute, None)
            self.scans.pop(minute, None)
        return out

    def snapshot(self, recent_minutes: int = 5) -> dict[str, Any]:
        """JSON-ready summary for ``warroom-updates``: in-flight lines by status and by
        region (the heatmap), and accepted events per status over the last minutes."""
        by_status: dict[str, int] = {}
        by_region: dict[str, int] = {}
        for (status, region), count in self.inflight.items():
            if count:
                by_status[status] = by_status.get(status, 0) + count
                by_region[region or "unknown"] = by_region.get(region or "unknown", 0) + count
        latest = minute_of(self.watermark_ns)
        throughput: dict[str, dict[str, int]] = {}
        for minute in sorted(self.throughput):
            if minute > latest - recent_minutes * MINUTE_NS:
                counts: dict[str, int] = {}
                for (status, _), count in self.throughput[minute].items():
                    counts[status] = counts.get(status, 0) + count
                throughput[ns_datetime(minute).isoformat()] = counts
        return {
            "partition": self.partition,
            "watermark": ns_datetime(self.watermark_ns).isoformat() if self.watermark_ns else None,
            "inflight_by_status": by_status,
            "inflight_by_region": by_region,
            "throughput_per_minute": throughput,
        }

    # -- recovery -----------------------------------------------------------------------

    @classmethod
    def rebuild(cls, partition: int, orders: Iterable[OrderState], window_minutes: int = 120) -> PartitionAggregates:
        """Recompute from the order states of the partition (after recovery); every minute
        in the window is marked for rewriting."""
        orders = [o for o in orders if o.partition == partition]
        agg = cls(partition, window_minutes)
        agg.watermark_ns = max((o.last_event_ns for o in orders), default=0)
        for order in orders:
            for sku in order.skus.values():
                key = inflight_key(sku)
                if key is not None:
                    agg.inflight[key] = agg.inflight.get(key, 0) + 1
                previous: TimelineEntry | None = None
                for entry in sku.timeline:
                    agg._count(entry, 1)
                    agg._scan(entry, 1)
                    if previous is not None:
                        agg._pair(previous, entry, 1)
                    previous = entry
        agg._touched = set(agg.inflight)
        agg._sample_due = bool(agg.watermark_ns)
        return agg
