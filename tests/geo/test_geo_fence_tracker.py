"""Enter / dwell / exit sequences, overstays and hub arrivals (pure state machine)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import shapely

from geo.fence_config import FenceKind
from geo.fence_index import Fence, GeofenceIndex
from geo.fence_tracker import (
    EMPTY_MEMBERSHIP,
    FenceEventKind,
    GeofenceTracker,
    Membership,
    PositionFix,
    StageAdvance,
    check_overstays,
    track_fix,
)
from stream.contract import Status

T0 = datetime(2026, 11, 11, 8, 0, tzinfo=timezone(timedelta(hours=8)))
E, D, X, OVER = FenceEventKind.ENTER, FenceEventKind.DWELL, FenceEventKind.EXIT, FenceEventKind.DWELL_EXCEEDED

HUB = Fence(
    "hub-1",
    "hubs",
    FenceKind.HUB,
    shapely.box(0, 0, 1, 1),
    advance_stage_to=Status.HUB_ARRIVAL,
    dwell_limit=timedelta(hours=2),
)
YARD = Fence("yard", "zones", FenceKind.DELIVERY_ZONE, shapely.box(0.5, 0, 3, 1))
INDEX = GeofenceIndex([HUB, YARD])


def fix(lon: float, minutes: float, entity: str = "sku-1") -> PositionFix:
    return PositionFix(entity, lon, 0.5, T0 + timedelta(minutes=minutes))


def kinds(step_events: tuple[object, ...]) -> list[tuple[str, str]]:
    return [(e.kind.value, e.fence_id) for e in step_events]  # type: ignore[attr-defined]


def test_enter_dwell_exit_sequence() -> None:
    tracker = GeofenceTracker(INDEX)
    state: Membership = EMPTY_MEMBERSHIP
    timeline = []
    for lon, minute in [(5.0, 0), (0.2, 10), (0.7, 40), (2.0, 70), (5.0, 100)]:
        step = tracker.observe(state, fix(lon, minute))
        state = step.state
        timeline.append(kinds(step.events))
    assert timeline == [
        [],
        [("enter", "hub-1")],
        [("dwell", "hub-1"), ("enter", "yard")],
        [("exit", "hub-1"), ("dwell", "yard")],
        [("exit", "yard")],
    ]
    assert state.inside == frozenset()


def test_dwell_and_exit_report_time_inside() -> None:
    step1 = track_fix(EMPTY_MEMBERSHIP, "c", ["yard"], T0, INDEX.by_id)
    step2 = track_fix(step1.state, "c", ["yard"], T0 + timedelta(minutes=30), INDEX.by_id)
    step3 = track_fix(step2.state, "c", [], T0 + timedelta(minutes=45), INDEX.by_id)
    assert step1.events[0].dwell == timedelta(0)
    assert step2.events[0].kind is D and step2.events[0].dwell == timedelta(minutes=30)
    assert step3.events[0].kind is X and step3.events[0].dwell == timedelta(minutes=45)
    assert step3.events[0].fence_kind is FenceKind.DELIVERY_ZONE


def test_entering_a_hub_fence_advances_the_stage_once() -> None:
    tracker = GeofenceTracker(INDEX)
    first = tracker.observe(EMPTY_MEMBERSHIP, fix(0.2, 0))
    assert first.advances == (StageAdvance("sku-1", "hub-1", Status.HUB_ARRIVAL, T0),)
    again = tracker.observe(first.state, fix(0.3, 5))
    assert again.advances == ()
    # A delivery zone carries no stage rule.
    assert tracker.observe(EMPTY_MEMBERSHIP, fix(2.5, 0)).advances == ()


def test_dwell_beyond_the_limit_is_an_exception_reported_once() -> None:
    tracker = GeofenceTracker(INDEX)
    state = EMPTY_MEMBERSHIP
    exceptions = []
    for minute in (0, 60, 119, 121, 150, 200):
        step = tracker.observe(state, fix(0.2, minute))
        state = step.state
        exceptions += [(minute, e.dwell) for e in step.events if e.is_exception]
    assert exceptions == [(121, timedelta(minutes=121))]
    # No limit on the yard: never an exception there.
    step = track_fix(EMPTY_MEMBERSHIP, "x", ["yard"], T0, INDEX.by_id)
    step = track_fix(step.state, "x", ["yard"], T0 + timedelta(days=3), INDEX.by_id)
    assert not any(e.is_exception for e in step.events)


def test_an_overstay_no_fix_caught_is_reported_on_exit() -> None:
    steps = [track_fix(EMPTY_MEMBERSHIP, "s", ["hub-1"], T0, INDEX.by_id)]
    steps.append(track_fix(steps[-1].state, "s", ["hub-1"], T0 + timedelta(minutes=90), INDEX.by_id))
    steps.append(track_fix(steps[-1].state, "s", ["hub-1"], T0 + timedelta(minutes=150), INDEX.by_id))
    assert [e.kind for e in steps[-1].events] == [D, OVER]
    # Exit after a long gap: the proven stay (last fix inside) decides, not the exit time.
    short = [track_fix(EMPTY_MEMBERSHIP, "s", ["hub-1"], T0, INDEX.by_id)]
    short.append(track_fix(short[-1].state, "s", ["hub-1"], T0 + timedelta(minutes=30), INDEX.by_id))
    short.append(track_fix(short[-1].state, "s", [], T0 + timedelta(hours=5), INDEX.by_id))
    assert [e.kind for e in short[-1].events] == [X]
    long = [track_fix(EMPTY_MEMBERSHIP, "s", ["hub-1"], T0, INDEX.by_id)]
    long.append(track_fix(long[-1].state, "s", ["hub-1"], T0 + timedelta(minutes=130), INDEX.by_id))
    assert [e.kind for e in long[-1].events] == [D, OVER]


def test_check_overstays_catches_entities_that_stopped_reporting() -> None:
    state = track_fix(EMPTY_MEMBERSHIP, "s", ["hub-1", "yard"], T0, INDEX.by_id).state
    assert check_overstays(state, "s", T0 + timedelta(hours=1), INDEX.by_id).events == ()
    step = check_overstays(state, "s", T0 + timedelta(hours=3), INDEX.by_id)
    assert kinds(step.events) == [("dwell_exceeded", "hub-1")]
    assert step.events[0].dwell == timedelta(hours=3) and step.events[0].dwell_limit == timedelta(hours=2)
    assert check_overstays(step.state, "s", T0 + timedelta(hours=4), INDEX.by_id).events == ()
    # ... and the next fix inside does not report it again.
    later = track_fix(step.state, "s", ["hub-1", "yard"], T0 + timedelta(hours=5), INDEX.by_id)
    assert kinds(later.events) == [("dwell", "hub-1"), ("dwell", "yard")]


def test_out_of_order_fixes_are_ignored() -> None:
    state = track_fix(EMPTY_MEMBERSHIP, "s", ["yard"], T0 + timedelta(minutes=10), INDEX.by_id).state
    late = track_fix(state, "s", [], T0, INDEX.by_id)
    assert late.stale and late.state == state and late.events == ()


def test_a_fence_removed_by_reload_produces_an_exit() -> None:
    state = track_fix(EMPTY_MEMBERSHIP, "s", ["gone"], T0, {}).state
    step = track_fix(state, "s", [], T0 + timedelta(minutes=1), {})
    assert kinds(step.events) == [("exit", "gone")] and step.events[0].fence_kind is None


def test_observe_batch_steps_each_entity_in_order() -> None:
    tracker = GeofenceTracker(INDEX)
    fixes = [fix(0.2, 0, "a"), fix(2.0, 0, "b"), fix(5.0, 10, "a"), fix(2.5, 20, "b")]
    states, steps = tracker.observe_batch({}, fixes)
    assert [kinds(s.events) for s in steps] == [
        [("enter", "hub-1")],
        [("enter", "yard")],
        [("exit", "hub-1")],
        [("dwell", "yard")],
    ]
    assert states["a"].inside == frozenset() and states["b"].inside == frozenset({"yard"})
    # Continuing from the returned states.
    _, more = tracker.observe_batch(states, [fix(5.0, 30, "b")])
    assert kinds(more[0].events) == [("exit", "yard")]


def test_membership_survives_a_json_round_trip() -> None:
    state = track_fix(EMPTY_MEMBERSHIP, "s", ["hub-1", "yard"], T0, INDEX.by_id).state
    state = check_overstays(state, "s", T0 + timedelta(hours=3), INDEX.by_id).state
    restored = Membership.from_json_obj(json.loads(json.dumps(state.to_json_obj())))
    assert restored == state
    assert restored.visits["hub-1"].overstay_reported and not restored.visits["yard"].overstay_reported
    assert Membership.from_json_obj(EMPTY_MEMBERSHIP.to_json_obj()) == EMPTY_MEMBERSHIP
