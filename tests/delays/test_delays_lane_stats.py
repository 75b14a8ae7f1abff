"""Lane statistics (quantiles, at-risk offsets, ETA), the deadline heap and watermarks."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from stream.core.deadline_heap import DeadlineHeap
from stream.core.lane_stats import BUCKETS, Lane, LaneStats, LogHistogram, PredictionSettings
from stream.core.watermarks import Watermarks

HOUR = 3600.0


def _exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_histogram_quantiles_are_within_bucket_resolution(q: float) -> None:
    rng = random.Random(5)
    values = [rng.lognormvariate(9.0, 0.8) for _ in range(20_000)]  # a few hours, long tail
    hist = LogHistogram()
    for v in values:
        hist.observe(v, 0)
    estimate = hist.quantile(q)
    assert estimate is not None
    assert abs(estimate / _exact_quantile(values, q) - 1) < 0.05
    assert len(hist.current) <= BUCKETS  # bounded however many observations


def test_histogram_is_deterministic_and_round_trips() -> None:
    rng = random.Random(9)
    values = [rng.uniform(0, 10 * HOUR) for _ in range(2000)]
    a, b = LogHistogram(), LogHistogram()
    for v in values:
        a.observe(v, 3)
        b.observe(v, 3)
    assert a.quantile(0.9) == b.quantile(0.9)
    c = LogHistogram.from_dict(json.loads(json.dumps(a.to_dict())))
    assert c.quantile(0.9) == a.quantile(0.9)
    assert c.risk_offset(0.9, 5 * HOUR) == a.risk_offset(0.9, 5 * HOUR)


def test_old_generations_rotate_out() -> None:
    hist = LogHistogram()
    for _ in range(100):
        hist.observe(HOUR, 0)
    for _ in range(100):
        hist.observe(10 * HOUR, 1)
    assert hist.total == 200
    hist.observe(10 * HOUR, 2)  # epoch 0 is now too old
    assert hist.total == 101
    assert hist.quantile(0.5) == pytest.approx(10 * HOUR, rel=0.1)
    hist.observe(HOUR, 0)  # older than both generations: ignored
    assert hist.total == 101


def test_risk_offset_is_when_the_p90_of_the_remaining_time_passes_the_deadline() -> None:
    hist = LogHistogram()
    rng = random.Random(1)
    for _ in range(5000):
        hist.observe(rng.uniform(1 * HOUR, 3 * HOUR), 0)
    # a 10 h window is never in danger until the longest seen duration has passed
    late = hist.risk_offset(0.9, 10 * HOUR)
    assert late is not None and 2.9 * HOUR <= late <= 3.3 * HOUR
    # a 2.5 h window: p90 of 1-3 h is 2.8 h, so at risk from the start
    assert hist.risk_offset(0.9, 2.5 * HOUR) == 0.0
    # a 2.9 h window: safe at first, at risk once most SKUs would have been done
    mid = hist.risk_offset(0.9, 2.9 * HOUR)
    assert mid is not None and 1.5 * HOUR < mid < 2.9 * HOUR
    assert hist.risk_offset(0.9, 0.5 * HOUR) == 0.0


def _stats(min_samples: int = 30) -> LaneStats:
    return LaneStats(PredictionSettings(min_samples=min_samples))


def test_sparse_lanes_fall_back_to_coarser_levels() -> None:
    stats = _stats()
    busy = Lane("WH-1", "SF", "Zhejiang")
    for i in range(40):
        stats.observe(busy, "stage:last_mile", 2 * HOUR + i, 0.0)
    rare = Lane("WH-9", "SF", "Zhejiang")
    stats.observe(rare, "stage:last_mile", 20 * HOUR, 0.0)
    own = stats.histogram(busy, "stage:last_mile")
    via_carrier_region = stats.histogram(rare, "stage:last_mile")
    assert own is not None and own.total == 40
    assert via_carrier_region is not None and via_carrier_region.total == 41
    assert stats.histogram(Lane("WH-1", "YTO", "Anhui"), "stage:last_mile") is not None  # global level
    assert stats.histogram(busy, "stage:fulfilment") is None


def test_histogram_count_is_bounded() -> None:
    stats = LaneStats(PredictionSettings(max_histograms=16))
    for i in range(50):
        stats.observe(Lane(f"WH-{i}", "SF", "Zhejiang"), "stage:x", HOUR, 0.0)
    assert len(stats) == 16
    dirty = stats.take_dirty()
    assert any(v is None for v in dirty.values())  # evictions are reported as deletions
    assert stats.take_dirty() == {}


def test_eta_range_widens_and_moves_with_time_already_spent() -> None:
    stats = _stats()
    lane = Lane("WH-1", "SF", "Zhejiang")
    rng = random.Random(3)
    for _ in range(500):
        stats.observe(lane, "deliver:hub_arrival", rng.uniform(4 * HOUR, 12 * HOUR), 0.0)
    since = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    fresh = stats.eta(lane, "hub_arrival", since)
    assert fresh is not None
    earliest, latest = fresh
    assert timedelta(hours=7) < earliest - since < timedelta(hours=9)
    assert timedelta(hours=10.5) < latest - since < timedelta(hours=12.5)
    later = stats.eta(lane, "hub_arrival", since, now=since + timedelta(hours=10))
    assert later is not None and later[0] >= since + timedelta(hours=10) and later[0] > earliest
    assert stats.eta(lane, "out_for_delivery", since) is None  # no data, no guess
    assert stats.eta(lane, "delivered", since) == (since, since)


def test_deadline_heap_fires_in_order_and_skips_rescheduled_entries() -> None:
    heap = DeadlineHeap()
    heap.schedule("b", 10.0)
    heap.schedule("a", 10.0)
    heap.schedule("c", 5.0)
    heap.schedule("c", 20.0)  # moved: the 5.0 entry is stale
    heap.schedule("d", 7.0)
    heap.cancel("d")
    assert heap.pop_due(9.0) == []
    assert heap.pop_due(10.0) == ["a", "b"]
    assert len(heap) == 1 and heap.peek() == 20.0
    for i in range(10_000):  # rescheduling many times keeps the heap compact
        heap.schedule("c", 30.0 + i)
    assert len(heap._heap) < 4000
    assert heap.pop_due(1e9) == ["c"]


def test_watermark_trails_event_time_and_follows_ticks_only_when_idle() -> None:
    marks = Watermarks(allowed_lateness=300, idle_after=60)
    assert marks.observe(0, 1000.0, received=1010.0) == 700.0
    assert marks.observe(0, 900.0, received=1020.0) == 700.0  # late data does not move it back
    marks.observe(1, 2000.0, received=1030.0)
    assert marks.global_watermark() == 700.0
    assert marks.tick(1050.0) == []  # both partitions busy
    assert marks.tick(1100.0) == [0]  # partition 1 is already ahead of the clock
    assert marks.get(0) == 800.0 and marks.get(1) == 1700.0
    marks.note_input(0, 1200.0)
    assert marks.tick(1230.0) == []  # input 30 s ago: not idle
    restored = Watermarks.from_dict(300, 60, json.loads(json.dumps(marks.to_dict())))
    assert restored.to_dict() == marks.to_dict()
    assert restored.advance_all(5000.0) == [0, 1] and restored.global_watermark() == 5000.0
