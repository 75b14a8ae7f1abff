"""Per-minute aggregates (pure): incremental updates equal a rebuild from the order states."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from stream_eventgen import fold_partition, generate, valid_events

from stream.contract import Status
from stream.core.aggregates import MINUTE_NS, PartitionAggregates, minute_of
from stream.core.order_state import OrderState
from stream.sinks.line_protocol import point_line

S = Status


def run(events, window: int = 120) -> tuple[PartitionAggregates, dict[str, OrderState]]:  # type: ignore[no-untyped-def]
    return fold_partition(events, 3, window)


def test_incremental_aggregates_equal_a_rebuild_from_state() -> None:
    events = valid_events(generate(seed=3, total=4000))
    agg, orders = run(events)
    agg.expire()  # the pipeline drops minutes behind the window after each batch
    rebuilt = PartitionAggregates.rebuild(3, orders.values(), 120)
    assert rebuilt.watermark_ns == agg.watermark_ns
    assert {k: v for k, v in rebuilt.inflight.items() if v} == {k: v for k, v in agg.inflight.items() if v}
    assert rebuilt.throughput == {m: {k: v for k, v in b.items() if v} for m, b in agg.throughput.items()}
    for minute, nodes in agg.dwell.items():
        for node, (count, total) in nodes.items():
            if round(count):
                assert rebuilt.dwell[minute][node][0] == count
                assert abs(rebuilt.dwell[minute][node][1] - total) < 1e-6


def test_throughput_counts_accepted_events_per_minute_status_and_region() -> None:
    events = valid_events(generate(seed=4, total=2000))
    agg, _ = run(events, window=100_000)
    total = sum(sum(bucket.values()) for bucket in agg.throughput.values())
    assert total == len({e.event_id for e in events})
    assert all(minute % MINUTE_NS == 0 for minute in agg.throughput)


def test_lines_are_rewritten_until_written_and_final_minutes_expire() -> None:
    events = valid_events(generate(seed=5, total=3000))
    agg, _ = run(events, window=30)
    pending = [point_line(p) for p in agg.pending_points()]
    assert any(p.startswith("throughput,partition=3,") for p in pending)
    assert any(p.startswith("inflight,partition=3,") for p in pending)
    assert any(p.startswith("dwell,node=") for p in pending)
    agg.mark_written()
    assert agg.pending_points() == []
    # minutes that left the window are dropped; unwritten ones come back as final lines
    oldest = min(agg.throughput)
    agg.dirty.add(oldest)
    agg.watermark_ns += 31 * MINUTE_NS
    final = [point_line(p) for p in agg.expire()]
    assert final and all(
        line.endswith(f" {oldest}") or int(line.rsplit(" ", 1)[1]) < agg.window_start for line in final
    )
    assert all(m >= agg.window_start for m in agg.throughput)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000))
def test_rebuild_matches_for_any_seed(seed: int) -> None:
    events = valid_events(generate(seed=seed, total=600))
    agg, orders = run(events)
    agg.expire()
    rebuilt = PartitionAggregates.rebuild(3, orders.values(), 120)
    assert rebuilt.throughput == {m: {k: v for k, v in b.items() if v} for m, b in agg.throughput.items()}
    snapshot = agg.snapshot()
    assert snapshot["partition"] == 3
    assert sum(snapshot["inflight_by_status"].values()) == sum(v for v in agg.inflight.values() if v)
    assert minute_of(agg.watermark_ns) == agg.window_start + 120 * MINUTE_NS
