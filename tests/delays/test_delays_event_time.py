"""Event time everywhere (pure parts): per-source watermarks, replays on their own clock,
far-past events judged when they happened, sync lag quantiles, replayed alerts recorded
but never sent."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from delays_traffic import HOUR, MIN, Delivery, HubOutage, Scenario, at, generate, make_event
from hypothesis import given, settings
from hypothesis import strategies as st
from test_delays_replay import RULES as SCENARIO_RULES
from test_delays_tracker import RULES

from stream.contract import Status
from stream.core.delays_engine import DelaysEngine
from stream.core.sku_delay import DelayState
from stream.core.sla import SlaRules
from stream.core.sync_lag import SyncLag, bucket_value, lag_bucket, quantile
from stream.core.watermarks import Watermarks

L = 300.0  # allowed lateness of the rules (5 min)
YEAR = timedelta(days=365)


# -- watermarks ------------------------------------------------------------------------


def test_a_lagging_source_holds_its_partition_back_until_it_is_idle() -> None:
    marks = Watermarks(L, idle_after=900.0)
    marks.observe(0, 1000.0, 1000.0, "carrier")
    marks.observe(0, 5000.0, 5000.0, "wms")
    assert marks.get(0) == 1000.0 - L  # the carrier has not said anything after t=1000 yet
    assert marks.sources(0) == {"carrier": 1000.0 - L, "wms": 5000.0 - L}
    marks.observe(0, 4000.0, 5100.0, "carrier")  # its sync arrives 18 minutes late
    assert marks.get(0) == 4000.0 - L
    assert not marks.tick_partition(0, 5200.0)  # carrier heard from 100 s ago: not idle
    marks.observe(0, 5900.0, 5900.0, "wms")
    assert marks.tick_partition(0, 6000.0)  # the carrier, quiet for 900 s, follows the clock
    assert marks.sources(0) == {"carrier": 6000.0 - L, "wms": 5900.0 - L}
    assert marks.get(0) == 5900.0 - L  # now the wms is the slowest


def test_busy_partitions_are_not_pushed_by_the_wall_clock_and_expected_ones_wait() -> None:
    marks = Watermarks(L, idle_after=60.0)
    marks.expect({0, 1})
    marks.observe(0, 1000.0, 1000.0, "a")
    assert marks.global_watermark() is None  # partition 1 has not spoken
    assert marks.tick(10_000.0, skip={0}) == [1]
    assert marks.get(0) == 1000.0 - L and marks.get(1) == 10_000.0 - L
    assert marks.global_watermark() == 1000.0 - L


def test_a_snapshot_round_trip_keeps_every_clock() -> None:
    marks = Watermarks(L, idle_after=60.0)
    marks.observe(3, 1000.0, 1010.0, "a")
    marks.observe(3, 2000.0, 2010.0, "b")
    marks.tick_partition(3, 2500.0)
    again = Watermarks.from_dict(L, 60.0, marks.to_dict())
    assert again.to_dict() == marks.to_dict() and again.get(3) == marks.get(3)
    old = Watermarks.from_dict(L, 60.0, {"0": {"newest": 50.0, "watermark": 40.0, "last_input": None}})
    assert old.get(0) == 40.0 and old.newest(0) == 50.0  # snapshots from before per-source clocks


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from("abc"), st.floats(0, 1e5), st.floats(0, 300), st.booleans()),
        min_size=1,
        max_size=60,
    )
)
def test_watermarks_never_go_back_and_never_pass_a_busy_source(ops: list[tuple[int, str, float, float, bool]]) -> None:
    marks = Watermarks(L, idle_after=120.0)
    seen: dict[int, float] = {}
    clock = 0.0
    for partition, source, event_time, lag, tick in ops:
        clock = max(clock, event_time + lag)
        before = marks.get(partition)
        if tick:
            marks.tick_partition(partition, clock)
        else:
            marks.observe(partition, event_time, clock, source)
        after = marks.get(partition)
        assert before is None or (after is not None and after >= before)
        for p, mark in seen.items():
            assert marks.get(p) is not None and marks.get(p) >= mark  # type: ignore[operator]
        if after is not None:
            seen[partition] = after
        # a source heard from less than idle_after ago (by this clock) is never overtaken
        # by more than the allowed lateness, unless the mark was already there before it spoke
        for name, source_mark in marks.sources(partition).items():
            newest = marks.newest(partition, name)
            if source_mark is not None and newest is not None and after is not None and before is None:
                assert after <= max(source_mark, newest - L) or after == source_mark


# -- the engine ------------------------------------------------------------------------


def _shift(deliveries: list[Delivery], by: timedelta) -> list[Delivery]:
    """The same records, happened (and received) ``by`` earlier or later."""
    update = {"event_time": None, "promised_by": None}
    out = []
    for d in deliveries:
        update = {"event_time": d.event.event_time + by}
        if d.event.promised_by is not None:
            update["promised_by"] = d.event.promised_by + by
        out.append(Delivery(d.received + by.total_seconds(), d.partition, d.event.model_copy(update=update)))
    return out


def test_a_replay_of_last_year_answers_like_the_same_events_fed_live() -> None:
    traffic = generate(
        Scenario(
            seed=11,
            orders=500,
            order_span=10 * HOUR,
            late_uploads=0.0,
            outages=[HubOutage("HUB-NJ", 2 * HOUR, 16 * HOUR)],
        )
    )
    traffic = [d for d in traffic if d.received < 13 * HOUR]  # stop in the middle of the outage
    end = max(d.received for d in traffic)
    live = DelaysEngine(SCENARIO_RULES)
    for d in traffic:  # live: each record received when it was, the wall clock ticking along
        live.process([d.event], partition=d.partition, now=at(d.received), received_at=[at(d.received).timestamp()])
        live.tick(at(d.received))
    replay = DelaysEngine(SCENARIO_RULES, replay="last-year")
    old = _shift(traffic, -YEAR)
    for d in sorted(old, key=lambda d: d.event.event_time):  # full speed, received now
        replay.process([d.event], partition=d.partition, now=datetime.now(UTC))
        replay.tick(datetime.now(UTC))  # the wall clock must not move a replay
    # the same event-time point for both: the replay's clock stops at its newest event
    live_mark, replay_mark = live.watermark(), replay.watermark()
    assert live_mark is not None and replay_mark is not None
    assert replay_mark <= at(end) - YEAR
    live_at = replay.watermark() + YEAR  # type: ignore[operator]
    views_live = {
        (v.order_id, v.sku): (v.state.value, round(v.delay_minutes, 6), v.closed) for v in live.views(live_at)
    }
    views_replay = {(v.order_id, v.sku): (v.state.value, round(v.delay_minutes, 6), v.closed) for v in replay.views()}
    # live ran on (its clock is later), so it already forgot SKUs closed an hour before it
    assert {k: v for k, v in views_replay.items() if not v[2]} == {k: v for k, v in views_live.items() if not v[2]}
    assert {k: views_replay[k] for k in views_live} == views_live
    states = Counter(state for state, _, _ in views_replay.values())
    assert states["stalled"] > 0 and states["on_track"] > states["late"] + states["stalled"]  # not all late
    ids = {r["incident_id"] for r in replay.open_incidents()}
    assert ids and all(r["replay"] == "last-year" for r in replay.open_incidents())
    assert ids.isdisjoint({r["incident_id"] for r in live.open_incidents()})
    roots = sorted(str(r["root_cause"]) for r in replay.open_incidents())
    assert roots == sorted(str(r["root_cause"]) for r in live.open_incidents())


def test_events_older_than_max_past_are_judged_when_they_happened() -> None:
    engine = DelaysEngine(RULES)
    long_ago = 60 * 24 * HOUR  # 60 days before the receipt
    received = at(long_ago + HOUR)
    engine.process(
        [
            make_event("O1", Status.PAID, 0, warehouse="WH-1"),
            make_event("O1", Status.OUTBOUND_SCAN, 1 * HOUR, warehouse="WH-1"),
        ],
        now=received,
    )
    sku = engine.tracker.get("O1|SKU-1")
    assert sku is not None and sku.entered["paid"] == at(0).timestamp()  # not at its arrival
    assert sku.breaches == 0  # shipped within the 6 h fulfilment window, in event time
    view = engine.view("O1", "SKU-1")
    assert view is not None and view.stage == "first_linehaul"


def test_a_replay_engine_ignores_the_wall_clock_and_keeps_its_closed_skus() -> None:
    engine = DelaysEngine(RULES, replay="r1")
    engine.process([make_event("O1", Status.PAID, 0, warehouse="WH-1")], now=datetime.now(UTC))
    assert engine.tick(datetime.now(UTC) + timedelta(days=30)).transitions == []
    view = engine.view("O1", "SKU-1")
    assert view is not None and view.state is DelayState.ON_TRACK
    engine.process([make_event("O1", Status.DELIVERED, 2 * HOUR, warehouse="WH-1")], now=datetime.now(UTC))
    engine.tick(datetime.now(UTC) + timedelta(days=30))
    assert engine.tracker.get("O1|SKU-1") is not None  # retention runs on the replay's clock
    engine.process([make_event("O2", Status.PAID, 2 * HOUR + 2 * MIN)], now=datetime.now(UTC))
    engine.process([make_event("O3", Status.PAID, 4 * HOUR)], now=datetime.now(UTC))
    assert engine.tracker.get("O1|SKU-1") is None  # an hour of replay time after delivery
    restored = DelaysEngine.from_dict(SlaRules.model_validate(RULES.model_dump()), engine.to_dict())
    assert restored.replay == "r1" and restored.replay_now == engine.replay_now


def test_a_lagging_source_gets_the_same_answer_as_a_prompt_one() -> None:
    rules = SlaRules.model_validate({**RULES.model_dump(), "watermark": {"allowed_lateness": "5m", "idle_after": "5m"}})

    def run(lag: float) -> list[DelayState]:
        """Every delay state O1 went through, and its state at 6.5 h."""
        engine = DelaysEngine(rules)
        seen: list[DelayState] = []
        events = [("O1", "oms", Status.PAID, 0.0, 0.0)]
        events += [(f"X{i}", "oms", Status.PAID, i * 2 * MIN, 0.0) for i in range(1, 200)]  # live traffic
        events += [(f"Y{i}", "carrier", Status.OUTBOUND_SCAN, i * 2 * MIN + 1, lag) for i in range(1, 200)]
        events.append(("O1", "carrier", Status.OUTBOUND_SCAN, 5.95 * HOUR, lag))  # just in time, synced late
        for order, source, status, t, delay in sorted(events, key=lambda e: e[3] + e[4]):
            event = make_event(order, status, t, warehouse="WH-1").model_copy(update={"source": source})
            for result in (
                engine.process([event], now=at(t + delay), received_at=[at(t + delay).timestamp()]),
                engine.tick(at(t + delay)),
            ):
                seen.extend(tr.state for tr in result.transitions if tr.order_id == "O1")
        view = engine.view("O1", "SKU-1", at(6.5 * HOUR))
        assert view is not None
        return [*seen, view.state]

    prompt = run(0.0)
    assert DelayState.LATE not in prompt and prompt[-1] is DelayState.ON_TRACK
    # 11.6 minutes is the industry average sync lag: with per-partition watermarks the
    # wms traffic would have judged O1 late before the carrier's scan arrived
    assert run(12 * MIN) == prompt


# -- sync lag --------------------------------------------------------------------------


def test_sync_lag_quantiles_per_source_and_minute() -> None:
    lag = SyncLag(window_s=300)
    base = 1_800_000_000.0  # a minute boundary
    for i in range(100):
        lag.observe("carrier", base + i * 0.5 - (i + 1) * 10.0, base + i * 0.5)  # lags 10..1000 s
        lag.observe("wms", base + i * 0.5 - 1.0, base + i * 0.5)
    minutes = lag.take_minutes()
    assert [(m, p, f.source) for m, p, f in minutes] == [(int(base // 60), 0, "carrier"), (int(base // 60), 0, "wms")]
    carrier = minutes[0][2]
    assert carrier.count == 100 and carrier.max_s == 1000.0
    assert abs(carrier.p50_s - 500.0) / 500.0 < 0.01 and abs(carrier.p99_s - 990.0) / 990.0 < 0.01
    assert abs(minutes[1][2].p50_s - 1.0) < 0.01
    assert lag.take_minutes() == []  # nothing new
    assert [f.source for f in lag.window(base + 60)] == ["carrier", "wms"]
    assert lag.window(base + 3600) == []


@given(st.lists(st.floats(0.02, 1e6), min_size=1, max_size=200), st.sampled_from([0.5, 0.99]))
def test_bucketed_quantiles_are_within_one_percent_of_the_exact_ones(lags: list[float], q: float) -> None:
    exact = sorted(lags)[max(1, -(-int(q * 1e9) * len(lags) // int(1e9))) - 1]
    found = quantile(Counter(lag_bucket(x) for x in lags), q)
    assert found is not None and abs(found - exact) <= 0.01 * exact
    assert bucket_value(lag_bucket(0.0)) == 0.0
