"""The SKU state machine and order state (pure): rules, properties, encoding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.contract import STAGE_RANK, OrderEvent, Status
from stream.core.lifecycle import TIMELINE_LIMIT, Outcome, apply_event, replay
from stream.core.order_state import OrderState, expired, new_order
from stream.core.progress import LADDER, START, Progress, step
from stream.sinks.changelog import decode_value, encode_value

S = Status
T0 = datetime(2026, 11, 11, 8, tzinfo=UTC)
_counter = iter(range(10**9))


def ev(status: Status, minute: float, sku: str = "sku-1", event_id: str | None = None, **extra: object) -> OrderEvent:
    return OrderEvent(
        event_id=event_id or f"e-{next(_counter)}",
        order_id="o-1",
        sku=sku,
        status=status,
        event_time=T0 + timedelta(minutes=minute),
        source="wms",
        **extra,
    )


def apply_all(events: list[OrderEvent]) -> OrderState:
    order = new_order("o-1", 0)
    for event in events:
        order, _ = apply_event(order, event)
    return order


def sku_of(order: OrderState, sku: str = "sku-1"):  # type: ignore[no-untyped-def]
    return order.skus[sku]


# -- rules ---------------------------------------------------------------------------------


def test_in_order_events_walk_the_stages_and_record_stage_times() -> None:
    order = apply_all([ev(S.PAID, 0), ev(S.PICKED, 10), ev(S.PACKED, 20), ev(S.OUTBOUND_SCAN, 30)])
    sku = sku_of(order)
    assert sku.status is S.OUTBOUND_SCAN and sku.rank == STAGE_RANK[S.OUTBOUND_SCAN]
    assert list(sku.stage_times) == ["paid", "picked", "packed", "outbound_scan"]
    assert sku.stage_times["picked"] == sku.timeline[1].time_ns
    assert [e.status for e in sku.timeline] == [S.PAID, S.PICKED, S.PACKED, S.OUTBOUND_SCAN]


def test_a_skipped_last_mile_is_applied_and_its_stages_recorded_as_not_scanned() -> None:
    # Real carriers hand over and deliver without an out-for-delivery scan.
    order = apply_all([ev(S.PAID, 0), ev(S.PICKED, 1), ev(S.PACKED, 2), ev(S.LINEHAUL, 3)])
    order, change = apply_event(order, ev(S.DELIVERED, 4))
    assert change is not None and change.outcome is Outcome.APPLIED
    assert change.entry.skipped == (S.OUT_FOR_DELIVERY,)
    sku = sku_of(order)
    assert sku.status is S.DELIVERED and sku.closed
    assert sku.not_scanned == (S.OUTBOUND_SCAN, S.OUT_FOR_DELIVERY)  # packed -> linehaul skipped one too


def test_handover_to_delivered_skips_transit_and_last_mile() -> None:
    order = apply_all([ev(S.PAID, 0), ev(S.OUTBOUND_SCAN, 60), ev(S.DELIVERED, 600)])
    sku = sku_of(order)
    assert sku.status is S.DELIVERED
    assert [e.skipped for e in sku.timeline] == [(), (S.PICKED, S.PACKED), (S.LINEHAUL, S.OUT_FOR_DELIVERY)]
    assert all(e.illegal is None for e in sku.timeline)


def test_regressions_and_cancel_after_shipping_stay_illegal() -> None:
    order = apply_all([ev(S.PAID, 0), ev(S.OUTBOUND_SCAN, 1), ev(S.HUB_ARRIVAL, 2)])
    for status in (S.PICKED, S.PACKED, S.CANCELLED, S.BACKORDERED):
        order, change = apply_event(order, ev(status, 3))
        assert change is not None and change.outcome is Outcome.ILLEGAL, status
        assert change.entry.skipped == ()
    assert sku_of(order).status is S.HUB_ARRIVAL
    order = apply_all([ev(S.PAID, 0), ev(S.DELIVERED, 1)])
    order, change = apply_event(order, ev(S.OUT_FOR_DELIVERY, 2))  # after delivery: a regression
    assert change is not None and change.outcome is Outcome.ILLEGAL
    order, change = apply_event(order, ev(S.RETURNED, 3))  # a return without its request scan
    assert change is not None and change.outcome is Outcome.APPLIED and change.entry.skipped == (S.RETURN_REQUESTED,)
    order, change = apply_event(order, ev(S.LINEHAUL, 4))
    assert change is not None and change.outcome is Outcome.ILLEGAL  # nothing after returned


def test_a_return_before_delivery_implies_no_delivery_scan() -> None:
    order = apply_all([ev(S.PAID, 0), ev(S.OUTBOUND_SCAN, 1), ev(S.DELIVERY_FAILED, 2), ev(S.RETURNED, 3)])
    sku = sku_of(order)
    assert sku.status is S.RETURNED and all(e.illegal is None for e in sku.timeline)
    assert [e.skipped for e in sku.timeline] == [
        (),
        (S.PICKED, S.PACKED),
        (S.LINEHAUL, S.OUT_FOR_DELIVERY),
        (S.RETURN_REQUESTED,),
    ]
    order = apply_all([ev(S.PAID, 0), ev(S.LINEHAUL, 1), ev(S.RETURN_REQUESTED, 2)])  # intercepted in transit
    assert sku_of(order).timeline[-1].skipped == ()


def test_a_late_scan_fills_the_gap_it_was_recorded_as_not_scanned_in() -> None:
    order = apply_all([ev(S.PAID, 0), ev(S.OUTBOUND_SCAN, 1), ev(S.DELIVERED, 9)])
    assert sku_of(order).not_scanned == (S.PICKED, S.PACKED, S.LINEHAUL, S.OUT_FOR_DELIVERY)
    order, change = apply_event(order, ev(S.OUT_FOR_DELIVERY, 8))
    assert change is not None and change.outcome is Outcome.LATE
    sku = sku_of(order)
    assert sku.status is S.DELIVERED
    assert [e.skipped for e in sku.timeline] == [(), (S.PICKED, S.PACKED), (S.LINEHAUL,), ()]
    assert sku.not_scanned == (S.PICKED, S.PACKED, S.LINEHAUL)


def test_events_after_cancellation_are_illegal() -> None:
    order = new_order("o-1", 0)
    for event in [ev(S.PAID, 0), ev(S.CANCELLED, 1)]:
        order, _ = apply_event(order, event)
    for status in (S.PICKED, S.EXCEPTION, S.DELIVERED):
        order, change = apply_event(order, ev(status, 2))
        assert change is not None and change.outcome is Outcome.ILLEGAL, status
    assert sku_of(order).status is S.CANCELLED
    assert (
        sku_of(order).timeline[-1].illegal == "exception after terminal status cancelled"
        or sku_of(order).timeline[-1].illegal == "cancelled -> delivered is not a legal transition"
    )


def test_late_event_is_recorded_but_never_regresses() -> None:
    order = new_order("o-1", 0)
    for event in [ev(S.PAID, 0), ev(S.PICKED, 10), ev(S.PACKED, 20), ev(S.OUTBOUND_SCAN, 30)]:
        order, _ = apply_event(order, event)
    order, change = apply_event(order, ev(S.BACKORDERED, 5))  # older, arrives last
    assert change is not None and change.outcome is Outcome.LATE and change.entry.late
    sku = sku_of(order)
    assert sku.status is S.OUTBOUND_SCAN
    assert [e.status for e in sku.timeline][:3] == [S.PAID, S.BACKORDERED, S.PICKED]
    assert sku.stage_times["backordered"] == sku.timeline[1].time_ns


def test_exception_interrupts_keeps_the_rank_and_resumes_per_the_interrupted_status() -> None:
    order = new_order("o-1", 0)
    for event in [ev(S.PAID, 0), ev(S.PACKED, 1), ev(S.LINEHAUL, 2), ev(S.EXCEPTION, 3)]:
        order, _ = apply_event(order, event)
    sku = sku_of(order)
    assert sku.status is S.EXCEPTION and sku.interrupted is S.LINEHAUL
    assert sku.rank == STAGE_RANK[S.LINEHAUL] and sku.effective_rank == STAGE_RANK[S.LINEHAUL]
    order, change = apply_event(order, ev(S.PICKED, 4))  # not legal after linehaul
    assert change is not None and change.outcome is Outcome.ILLEGAL
    assert "interrupted linehaul" in (change.illegal_reason or "")
    order, change = apply_event(order, ev(S.HUB_ARRIVAL, 5))  # legal after linehaul
    assert change is not None and change.outcome is Outcome.APPLIED
    assert sku_of(order).status is S.HUB_ARRIVAL and sku_of(order).interrupted is None


def test_resuming_the_interrupted_status_itself_is_allowed() -> None:
    order = apply_all(
        [ev(S.PAID, 0), ev(S.PACKED, 1), ev(S.OUTBOUND_SCAN, 2), ev(S.EXCEPTION, 3), ev(S.OUTBOUND_SCAN, 4)]
    )
    assert sku_of(order).status is S.OUTBOUND_SCAN


def test_duplicate_event_id_changes_nothing() -> None:
    first = ev(S.PAID, 0, event_id="dup")
    order = apply_all([first, ev(S.PICKED, 1)])
    again, change = apply_event(order, first)
    assert change is None and again is order
    # same id with other content (a broken resend) is still a duplicate
    _, change = apply_event(order, ev(S.PACKED, 5, event_id="dup"))
    assert change is None


def test_skus_are_independent_lines_of_one_order() -> None:
    order = apply_all(
        [ev(S.PAID, 0, sku="a"), ev(S.PAID, 0, sku="b"), ev(S.BACKORDERED, 1, sku="b"), ev(S.PICKED, 2, sku="a")]
    )
    assert {k: v.status for k, v in order.skus.items()} == {"a": S.PICKED, "b": S.BACKORDERED}
    assert order.last_event_ns == sku_of(order, "a").timeline[-1].time_ns


def test_last_position_and_facts_follow_the_newest_event() -> None:
    order = apply_all(
        [
            ev(S.HUB_ARRIVAL, 10, lat=31.2, lon=121.4, region="310000", carrier="sf"),
            ev(S.LINEHAUL, 5, lat=30.0, lon=120.0, region="330000", warehouse="wh-1"),  # late
        ]
    )
    sku = sku_of(order)
    assert sku.position is not None and (sku.position.lat, sku.position.lon) == (31.2, 121.4)
    assert sku.facts.region == "310000"  # the newest wins
    assert sku.facts.warehouse == "wh-1"  # a late event fills gaps


def test_timeline_is_bounded_and_older_status_is_folded_into_base() -> None:
    events = [ev(S.PAID, 0), ev(S.PACKED, 1), ev(S.LINEHAUL, 2)]
    events += [ev(S.HUB_ARRIVAL if i % 2 else S.LINEHAUL, 3 + i) for i in range(TIMELINE_LIMIT + 5)]
    order = apply_all(events)
    sku = sku_of(order)
    assert len(sku.timeline) == TIMELINE_LIMIT
    assert sku.base.status in (S.LINEHAUL, S.HUB_ARRIVAL) and sku.base.rank == STAGE_RANK[S.LINEHAUL]
    assert sku.event_ids == frozenset(e.event_id for e in sku.timeline)
    # an event older than everything kept is counted late but not recorded
    _, change = apply_event(order, ev(S.PICKED, 0.5))
    assert change is not None and change.outcome is Outcome.LATE and not change.recorded


def test_expiry_of_closed_and_abandoned_orders() -> None:
    hour = 3600 * 10**9
    closed = apply_all([ev(S.PAID, 0), ev(S.CANCELLED, 1)])
    open_ = apply_all([ev(S.PAID, 0)])
    wm = closed.last_event_ns
    assert not expired(closed, wm + 23 * hour, 24 * hour, 100 * hour)
    assert expired(closed, wm + 25 * hour, 24 * hour, 100 * hour)
    assert not expired(open_, wm + 25 * hour, 24 * hour, 100 * hour)
    assert expired(open_, wm + 101 * hour, 24 * hour, 100 * hour)


def test_state_encoding_round_trips() -> None:
    order = apply_all(
        [
            ev(S.PAID, 0, sku="a", lat=31.2, lon=121.4, promised_by=T0 + timedelta(days=2)),
            ev(S.EXCEPTION, 1, sku="a"),
            ev(S.PAID, 0, sku="b"),
            ev(S.DELIVERED, 2, sku="b"),
        ]
    )
    order = order.with_extension("sla", {"due": "2026-11-12T00:00:00+00:00"})
    decoded = decode_value(encode_value(order))
    assert decoded == order


# -- properties -----------------------------------------------------------------------------


def canonical(sku):  # type: ignore[no-untyped-def]
    return (
        sku.status,
        sku.interrupted,
        sku.rank,
        dict(sku.stage_times),
        sku.status_time_ns,
        [(e.event_id, e.status, e.time_ns, e.illegal, e.skipped) for e in sku.timeline],
    )


@st.composite
def legal_chains(draw: st.DrawFn) -> list[OrderEvent]:
    """A sequence of events, strictly increasing in time, each legal after the previous."""
    length = draw(st.integers(min_value=1, max_value=14))
    statuses: list[Status] = []
    p: Progress = START
    for _ in range(length):
        options = [s for s in Status if not isinstance(step(p, s), str)]
        if not options:
            break
        status = draw(st.sampled_from(options))
        result = step(p, status)
        assert not isinstance(result, str), (p, status, result)
        p = result
        statuses.append(status)
    gaps = draw(st.lists(st.integers(min_value=1, max_value=600), min_size=len(statuses), max_size=len(statuses)))
    minute = 0.0
    events = []
    for index, (status, gap) in enumerate(zip(statuses, gaps, strict=True)):
        minute += gap / 60
        events.append(ev(status, minute, event_id=f"c-{index}"))
    return events


@settings(max_examples=300, deadline=None)
@given(chain=legal_chains(), data=st.data())
def test_any_arrival_order_of_a_legal_chain_converges(chain: list[OrderEvent], data: st.DataObject) -> None:
    arrival = data.draw(st.permutations(chain))
    order = apply_all(list(arrival))
    sku = sku_of(order)
    assert sku.status is chain[-1].status
    assert all(e.illegal is None for e in sku.timeline)
    # Everything but the arrival-dependent "late" flags is the same as in time order.
    assert canonical(sku_of(apply_all(chain))) == canonical(sku)


statuses = st.sampled_from(list(Status))
arbitrary_events = st.lists(
    st.tuples(statuses, st.integers(min_value=0, max_value=120), st.integers(min_value=0, max_value=9)),
    min_size=1,
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(raw=arbitrary_events)
def test_rank_never_decreases_whatever_arrives(raw: list[tuple[Status, int, int]]) -> None:
    order = new_order("o-1", 0)
    rank = None
    for index, (status, minute, _) in enumerate(raw):
        order, _ = apply_event(order, ev(status, minute, event_id=f"x-{index}"))
        current = sku_of(order).rank
        assert rank is None or current >= rank
        rank = current


@settings(max_examples=200, deadline=None)
@given(raw=arbitrary_events, data=st.data())
def test_duplicates_are_no_ops(raw: list[tuple[Status, int, int]], data: st.DataObject) -> None:
    events = [ev(status, minute, event_id=f"d-{i}") for i, (status, minute, _) in enumerate(raw)]
    with_dups = list(events)
    for _ in range(data.draw(st.integers(min_value=1, max_value=10))):
        original = data.draw(st.sampled_from(events))
        at = data.draw(st.integers(min_value=with_dups.index(original) + 1, max_value=len(with_dups)))
        with_dups.insert(at, original)
    order = new_order("o-1", 0)
    for event in with_dups:
        before = order
        order, change = apply_event(order, event)
        if change is None:
            assert order is before
    assert order.skus == apply_all(events).skus


@settings(max_examples=100, deadline=None)
@given(raw=arbitrary_events)
def test_every_reachable_state_round_trips_through_the_table_codec(raw: list[tuple[Status, int, int]]) -> None:
    events = [ev(status, minute, sku=f"s{sku % 3}", event_id=f"r-{i}") for i, (status, minute, sku) in enumerate(raw)]
    order = replay(events)["o-1"]
    assert decode_value(encode_value(order)) == order


TO_DELIVERY = LADDER[: LADDER.index(S.DELIVERED) + 1]


@settings(max_examples=300, deadline=None)
@given(kept=st.lists(st.booleans(), min_size=len(TO_DELIVERY), max_size=len(TO_DELIVERY)), data=st.data())
def test_scans_missing_from_the_ladder_are_exactly_the_not_scanned_stages(
    kept: list[bool], data: st.DataObject
) -> None:
    """Drop any scans of a walk from payment to delivery, deliver the rest in any order: the
    SKU ends at the last scan kept, nothing is illegal, and the stages not scanned between
    the first and the last scan kept are exactly the dropped ones."""
    walk = [status for status, keep in zip(TO_DELIVERY, kept, strict=True) if keep]
    if not walk:
        return
    events = [ev(status, 10 * LADDER.index(status), event_id=f"w-{status.value}") for status in walk]
    order = apply_all(list(data.draw(st.permutations(events))))
    sku = sku_of(order)
    assert sku.status is walk[-1]
    assert all(e.illegal is None for e in sku.timeline)
    first, last = LADDER.index(walk[0]), LADDER.index(walk[-1])
    assert sku.not_scanned == tuple(s for s in LADDER[first:last] if s not in walk)
