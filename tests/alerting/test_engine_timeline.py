"""Timeline tests of the alerting engine with an injected clock (pure, no I/O)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from alerting_testkit import T0, Clock, incident, notifications, records, sent

from alerting.decisions import AlertEventType as E
from alerting.engine import AlertEngine, UnknownAlertError
from alerting.incident import IncidentEvent
from alerting.policy import AlertPolicy
from alerting.state import AlertStatus
from alerting.tier import Tier


def region_east(updated_at: datetime, *, resolved: bool = False) -> IncidentEvent:
    """The east region's disruption (600 orders; 0 once resolved): it inhibits the east hub."""
    state, orders = ("resolved", 0) if resolved else ("open", 600)
    return incident(
        "region-east",
        kind="region_disruption",
        state=state,
        orders=orders,
        labels={"region": "east"},
        updated_at=updated_at,
    )


def test_hub_stops_scanning_pages_escalates_ack_and_resolves_once(engine: AlertEngine) -> None:
    clock = Clock(T0)
    # 10:00 the hub stops scanning; the incident opens with 150 orders: P2.
    out = engine.observe_incident(incident("hub-1"), clock.now)
    [fired] = records(out, E.FIRED)
    assert fired.tier is Tier.P2
    assert notifications(out) == []  # group_wait first
    alert_id = fired.alert_id

    # 10:00:29 still inside group_wait.
    assert sent(engine.tick(clock.at(seconds=29))) == []
    # 10:00:30 chat is told and the primary on-call (alice) is paged.
    out = engine.tick(clock.at(seconds=30))
    assert sent(out) == [("firing", "ops-chat"), ("page", "alice-pager")]
    assert [r.step for r in records(out, E.ESCALATED)] == [0]
    page = notifications(out)[1]
    assert page.user == "alice" and page.tier is Tier.P2 and page.step == 0

    # Nobody acks: the secondary (bob) is paged exactly at 10m after the first page.
    assert sent(engine.tick(clock.at(minutes=10, seconds=29))) == []
    out = engine.tick(clock.at(minutes=10, seconds=30))
    assert sent(out) == [("page", "bob-pager")]
    assert [r.step for r in records(out, E.ESCALATED)] == [1]
    assert sent(engine.tick(clock.at(minutes=11))) == []

    # Bob acks: everyone told so far learns it, and escalation stops.
    out = engine.ack(alert_id, "bob", clock.at(minutes=12))
    assert sorted(sent(out)) == [("acked", "alice-pager"), ("acked", "bob-pager"), ("acked", "ops-chat")]
    [acked] = records(out, E.ACKED)
    assert acked.by == "bob"
    assert engine.alert(alert_id).status is AlertStatus.ACKED
    # Without the ack, the policy's second pass would page alice at 10:25:30.
    for minute in (20, 26, 40, 90, 300):
        assert sent(engine.tick(clock.at(minutes=minute))) == []
    assert engine.ack(alert_id, "alice", clock.now) == []  # idempotent

    # Scans resume: recovering, then resolved -> one resolved notice per receiver told.
    out = engine.observe_incident(
        incident("hub-1", state="recovering", orders=40, updated_at=clock.at(minutes=301)), clock.now
    )
    assert sent(out) == []
    out = engine.observe_incident(
        incident("hub-1", state="resolved", orders=0, updated_at=clock.at(minutes=310)), clock.now
    )
    assert sorted(sent(out)) == [
        ("resolved", "alice-pager"),
        ("resolved", "bob-pager"),
        ("resolved", "ops-chat"),
    ]
    [resolved] = records(out, E.RESOLVED)
    assert resolved.by == "auto"
    # A duplicate resolved snapshot and later ticks say nothing more.
    assert engine.observe_incident(incident("hub-1", state="resolved", orders=0, updated_at=clock.now), clock.now) == []
    assert sent(engine.tick(clock.at(minutes=400))) == []


def test_without_ack_the_policy_repeats_once_then_stops(engine: AlertEngine) -> None:
    clock = Clock(T0)
    engine.observe_incident(incident("hub-1"), clock.now)
    pages = []
    for second in range(0, 3 * 3600, 30):
        for n in notifications(engine.tick(clock.at(seconds=second))):
            if n.kind.value == "page":
                pages.append((n.user, n.step, n.round, (n.created_at - T0).total_seconds()))
    assert pages == [
        ("alice", 0, 0, 30.0),
        ("bob", 1, 0, 630.0),  # +10m
        ("alice", 0, 1, 1530.0),  # +15m, second pass
        ("bob", 1, 1, 2130.0),  # +10m
    ]


def test_growing_incident_moves_from_p3_to_p2_and_starts_paging(engine: AlertEngine) -> None:
    clock = Clock(T0)
    engine.observe_incident(incident("hub-1", orders=20), clock.now)
    out = engine.tick(clock.at(seconds=30))
    assert sent(out) == [("firing", "ops-chat")]  # P3: chat only
    assert notifications(out)[0].tier is Tier.P3

    # 10:03 it grows past 100 orders: P2, paging starts at once (not at the next flush).
    out = engine.observe_incident(
        incident("hub-1", state="growing", orders=180, updated_at=clock.at(minutes=3)), clock.now
    )
    [change] = records(out, E.TIER_CHANGED)
    assert change.detail == "P3->P2"
    assert sent(out) == [("page", "alice-pager")]
    # Chat hears about the change at the next group_interval flush (10:05:30).
    assert sent(engine.tick(clock.at(minutes=5))) == []
    out = engine.tick(clock.at(minutes=5, seconds=30))
    assert sent(out) == [("update", "ops-chat")]
    assert "P2" in notifications(out)[0].title


def test_tier_falls_only_after_the_hold_and_then_stops_paging(engine: AlertEngine) -> None:
    clock = Clock(T0)
    engine.observe_incident(incident("hub-1", orders=150), clock.now)
    engine.tick(clock.at(seconds=30))  # paged alice
    engine.observe_incident(incident("hub-1", state="recovering", orders=20, updated_at=clock.at(minutes=2)), clock.now)
    assert engine.alerts()[0].tier is Tier.P2  # held
    out = engine.tick(clock.at(minutes=12))
    assert [r.detail for r in records(out, E.TIER_CHANGED)] == ["P2->P3"]
    assert len(records(out, E.ESCALATION_STOPPED)) == 1
    # The step that was due at 10:10:30 never fires.
    assert [n for n in notifications(engine.tick(clock.at(minutes=30))) if n.kind.value == "page"] == []


def test_p1_also_tells_the_manager_once(engine: AlertEngine) -> None:
    clock = Clock(T0)
    engine.observe_incident(incident("region-1", kind="region_disruption", orders=2500), clock.now)
    out = engine.tick(clock.at(seconds=30))
    assert sent(out) == [("firing", "ops-chat"), ("firing", "manager-mail"), ("page", "alice-pager")]
    assert all(n.tier is Tier.P1 for n in notifications(out))
    assert "manager-mail" not in {r for _, r in sent(engine.tick(clock.at(minutes=6)))}


def test_restart_mid_escalation_resumes_the_next_step_exactly_once(policy: AlertPolicy, engine: AlertEngine) -> None:
    clock = Clock(T0)
    engine.observe_incident(incident("hub-1"), clock.now)
    engine.tick(clock.at(seconds=30))  # step 0 paged
    engine.tick(clock.at(minutes=5))
    # The worker saves state to its table (JSON) and dies; a new worker restores it.
    snapshot = json.loads(json.dumps(engine.to_dict()))
    restored = AlertEngine.from_dict(policy, snapshot)
    assert restored.to_dict() == engine.to_dict()

    out = restored.tick(clock.at(minutes=10, seconds=30))
    assert sent(out) == [("page", "bob-pager")]
    # The old worker, had it lived, would have decided exactly the same (same ids).
    assert engine.tick(clock.now) == out
    # And nothing repeats afterwards.
    assert sent(restored.tick(clock.now)) == []
    assert [n for n in notifications(restored.tick(clock.at(minutes=20))) if n.kind.value == "page"] == []

    # A worker that restarts late (down from 10:09 to 10:40) fires the overdue step once,
    # and the next one only after its full delay.
    fresh = AlertEngine.from_dict(policy, snapshot)
    out = fresh.tick(clock.at(minutes=40))
    assert [n.user for n in notifications(out) if n.kind.value == "page"] == ["bob"]
    assert [n for n in notifications(fresh.tick(clock.at(minutes=54))) if n.kind.value == "page"] == []
    out = fresh.tick(clock.at(minutes=55))
    assert [(n.user, n.round) for n in notifications(out) if n.kind.value == "page"] == [("alice", 1)]


def test_inhibition_region_mutes_hubs_and_hubs_mute_their_orders(engine: AlertEngine) -> None:
    clock = Clock(T0)
    region = region_east(T0)
    hub_east = incident("hub-east", labels={"region": "east", "node": "HUB-SH-01"})
    hub_west = incident("hub-west", labels={"region": "west", "node": "HUB-CD-01"})
    late_east = incident("late-1", kind="order_late", orders=12, labels={"region": "east", "node": "HUB-SH-01"})
    late_other = incident("late-2", kind="order_late", orders=12, labels={"region": "east", "node": "HUB-HZ-02"})
    decisions = []
    for event in (region, hub_east, hub_west, late_east, late_other):
        decisions += engine.observe_incident(event, clock.now)
    inhibited = {r.detail.split()[0] for r in records(decisions, E.INHIBITED)}
    assert inhibited == {"hub-east", "late-1"}

    out = engine.tick(clock.at(minutes=3))
    told = {(n.receiver, n.incident_ids) for n in notifications(out) if n.kind.value == "firing"}
    assert told == {
        ("ops-chat", ("region-east",)),
        ("ops-chat", ("hub-west",)),
        ("cs-chat", ("late-2",)),
    }

    # The region recovers: the east hub is released and notified at once (its
    # group_wait passed long ago); the late order stays muted under its hub.
    out = engine.observe_incident(region_east(clock.at(minutes=20), resolved=True), clock.now)
    assert [r.detail for r in records(out, E.UNMUTED)] == ["hub-east"]
    assert ("firing", "ops-chat") in sent(out) and ("page", "alice-pager") in sent(out)
    hub_alert = engine.alerts_for_incident("hub-east")[0]
    assert hub_alert.status is AlertStatus.FIRING
    assert engine.alerts_for_incident("late-1")[0].muted

    out = engine.observe_incident(
        incident(
            "hub-east",
            state="resolved",
            orders=0,
            labels={"region": "east", "node": "HUB-SH-01"},
            updated_at=clock.at(minutes=30),
        ),
        clock.now,
    )
    assert [r.detail for r in records(out, E.UNMUTED)] == ["late-1"]
    assert ("firing", "cs-chat") in sent(out)
    late_notice = [n for n in notifications(out) if n.receiver == "cs-chat"][0]
    assert late_notice.language == "zh-CN" and "影响" in late_notice.text


def test_inhibited_alert_stops_paging_and_resumes_with_its_remaining_delay(engine: AlertEngine) -> None:
    clock = Clock(T0)
    engine.observe_incident(incident("hub-east", labels={"region": "east", "node": "N1"}), clock.now)
    engine.tick(clock.at(seconds=30))  # alice paged; bob due at 10:10:30
    engine.observe_incident(region_east(clock.at(minutes=4)), clock.now)
    assert engine.alerts_for_incident("hub-east")[0].muted
    out = engine.tick(clock.at(minutes=30))
    assert ("page", "bob-pager") not in sent(out)
    # Released at 10:31 with 6.5 minutes of the step's delay left.
    engine.observe_incident(region_east(clock.at(minutes=31), resolved=True), clock.now)
    assert ("page", "bob-pager") not in sent(engine.tick(clock.at(minutes=37, seconds=29)))
    assert ("page", "bob-pager") in sent(engine.tick(clock.at(minutes=37, seconds=30)))


def test_silence_with_expiry_mutes_only_its_match_then_lets_it_fire(engine: AlertEngine) -> None:
    clock = Clock(T0)
    out = engine.silence(
        ['node="HUB-SH-01"'], "carol", clock.now, duration=timedelta(hours=1), comment="scanner maintenance"
    )
    [created] = records(out, E.SILENCE_CREATED)
    assert created.silence_id and created.by == "carol"
    engine.observe_incident(incident("hub-1", labels={"region": "east", "node": "HUB-SH-01"}), clock.now)
    engine.observe_incident(incident("hub-2", labels={"region": "east", "node": "HUB-HZ-02"}), clock.now)
    out = engine.tick(clock.at(minutes=1))
    assert {n.incident_ids for n in notifications(out)} == {("hub-2",)}
    assert all(
        "hub-1" not in n.incident_ids for m in range(2, 60) for n in notifications(engine.tick(clock.at(minutes=m)))
    )
    out = engine.tick(clock.at(hours=1))
    assert records(out, E.SILENCE_EXPIRED)
    assert [r.detail for r in records(out, E.UNMUTED)] == ["hub-1"]
    assert ("page", "alice-pager") in sent(out)
    assert all(n.incident_ids == ("hub-1",) for n in notifications(out))


def test_silence_until_resolved_still_sends_the_resolved_notice(engine: AlertEngine) -> None:
    clock = Clock(T0)
    engine.observe_incident(incident("hub-1"), clock.now)
    engine.tick(clock.at(seconds=30))  # chat + alice told
    out = engine.silence(['incident_id="hub-1"'], "alice", clock.at(minutes=2), until_resolved=True)
    assert len(records(out, E.SILENCED)) == 1
    # Silenced: no escalation to bob, no reminders.
    assert sent(engine.tick(clock.at(hours=3))) == []
    out = engine.observe_incident(
        incident("hub-1", state="resolved", orders=0, updated_at=clock.at(hours=3, minutes=1)), clock.now
    )
    assert sorted(sent(out)) == [("resolved", "alice-pager"), ("resolved", "ops-chat")]
    assert len(records(out, E.SILENCE_EXPIRED)) == 1
    assert engine.state.silences[records(out, E.SILENCE_EXPIRED)[0].silence_id or ""].expired_at == clock.now


def test_expire_silence_by_hand_and_bad_silences(engine: AlertEngine) -> None:
    clock = Clock(T0)
    engine.observe_incident(incident("hub-1"), clock.now)
    [created] = records(engine.silence(['kind="hub_stall"'], "ops", clock.now, until_resolved=True), E.SILENCE_CREATED)
    assert sent(engine.tick(clock.at(minutes=5))) == []
    out = engine.expire_silence(created.silence_id or "", "ops", clock.at(minutes=6))
    assert ("firing", "ops-chat") in sent(out)
    with pytest.raises(ValueError, match="exactly one"):
        engine.silence(['kind="x"'], "ops", clock.now)
    with pytest.raises(ValueError, match="bad matcher"):
        engine.silence(["kind=hub"], "ops", clock.now, until_resolved=True)


def test_manual_resolve_sends_one_notice_and_stays_closed_until_worse(engine: AlertEngine) -> None:
    clock = Clock(T0)
    engine.observe_incident(incident("hub-1", orders=20), clock.now)
    out = engine.tick(clock.at(seconds=30))
    alert_id = notifications(out)[0].alert_id
    out = engine.resolve(alert_id, "carol", clock.at(minutes=1))
    assert sent(out) == [("resolved", "ops-chat")]
    assert records(out, E.RESOLVED)[0].by == "carol"
    assert engine.resolve(alert_id, "carol", clock.now) == []
    # Same impact later: still closed.
    out = engine.observe_incident(incident("hub-1", orders=25, updated_at=clock.at(minutes=5)), clock.now)
    assert records(out, E.FIRED) == []
    # Worse (P2): a new alert with a new id.
    out = engine.observe_incident(incident("hub-1", orders=300, updated_at=clock.at(minutes=6)), clock.now)
    [fired] = records(out, E.FIRED)
    assert fired.alert_id != alert_id and fired.tier is Tier.P2


def test_grouping_sends_one_notification_for_many_incidents(engine: AlertEngine) -> None:
    clock = Clock(T0)
    for i in range(4):
        engine.observe_incident(
            incident(f"late-{i}", kind="order_late", orders=12, labels={"node": "HUB-X"}), clock.now
        )
    out = engine.tick(clock.at(seconds=30))
    [notice] = notifications(out)
    assert notice.receiver == "cs-chat" and set(notice.incident_ids) == {f"late-{i}" for i in range(4)}
    # A fifth incident joins; chat hears once at the next group_interval, not at once.
    assert (
        sent(
            engine.observe_incident(
                incident(
                    "late-4", kind="order_late", orders=12, labels={"node": "HUB-X"}, updated_at=clock.at(minutes=1)
                ),
                clock.now,
            )
        )
        == []
    )
    assert sent(engine.tick(clock.at(minutes=5, seconds=30))) == [("update", "cs-chat")]
    assert sent(engine.tick(clock.at(minutes=10, seconds=30))) == []
    # Repeat after repeat_interval (1h) while unacknowledged.
    assert sent(engine.tick(clock.at(hours=1, minutes=6))) == [("repeat", "cs-chat")]


def test_p4_is_dashboard_only(engine: AlertEngine) -> None:
    clock = Clock(T0)
    out = engine.observe_incident(incident("dq-1", kind="data_quality", orders=2), clock.now)
    assert records(out, E.FIRED)[0].tier is Tier.P4
    assert all(sent(engine.tick(clock.at(minutes=m))) == [] for m in range(1, 120, 5))


def test_time_to_promise_and_stale_snapshots(engine: AlertEngine) -> None:
    clock = Clock(T0)
    # 3 orders, promise in 45 min: P4 now, P3 once under 30 minutes (tick-driven).
    engine.observe_incident(incident("late-9", kind="hub_stall", orders=3, minutes_to_promise=45), clock.now)
    assert engine.alerts()[0].tier is Tier.P4
    engine.tick(clock.at(minutes=15))
    assert engine.alerts()[0].tier is Tier.P3
    # An older snapshot arriving late changes nothing.
    engine.observe_incident(incident("late-9", orders=999, updated_at=T0 - timedelta(minutes=1)), clock.now)
    assert engine.state.incidents["late-9"].event.affected_orders == 3


def test_unknown_alert(engine: AlertEngine) -> None:
    with pytest.raises(UnknownAlertError, match="unknown alert 'nope'"):
        engine.ack("nope", "x", T0)
