"""Incidents of a replay of history (``orderradar import --replay``): the engine records
the alert, marked replay and grouped apart from live ones, and sends nothing, ever."""

from __future__ import annotations

from datetime import timedelta

from alerting_testkit import T0, delay_record, incident, notifications, records

from alerting.decisions import AlertEventType as E
from alerting.engine import REPLAY_LABEL, AlertEngine
from stream.stages.alerting_agent import incident_from_record

LABELS = {"region": "east", "node": "HUB-SH-01", "warehouse": "WH-SH"}


def test_a_replayed_p1_incident_is_recorded_but_pages_and_notifies_no_one(engine: AlertEngine) -> None:
    replayed = incident("inc-r", orders=5000, labels={**LABELS, REPLAY_LABEL: "olist_events"})
    decisions = engine.observe_incident(replayed, T0)
    for minutes in range(0, 180, 5):  # group wait, escalation steps, repeats: all would page
        decisions += engine.tick(T0 + timedelta(minutes=minutes))
    assert notifications(decisions) == []
    fired = records(decisions, E.FIRED)
    assert len(fired) == 1 and fired[0].labels[REPLAY_LABEL] == "olist_events"
    assert "replay=olist_events" in fired[0].detail
    assert records(decisions, E.ESCALATED) == [] and records(decisions, E.NOTIFIED) == []
    assert engine.alerts()[0].group_labels[REPLAY_LABEL] == "olist_events"


def test_a_live_incident_like_it_still_pages_and_is_not_grouped_with_the_replay(engine: AlertEngine) -> None:
    engine.observe_incident(incident("inc-r", orders=5000, labels={**LABELS, REPLAY_LABEL: "r"}), T0)
    decisions = engine.observe_incident(incident("inc-live", orders=5000, labels=LABELS), T0)
    decisions += engine.tick(T0 + timedelta(minutes=1))
    assert {n.receiver for n in notifications(decisions)} >= {"ops-chat"}
    assert all(n.incident_ids == ("inc-live",) for n in notifications(decisions))
    assert len(engine.alerts()) == 2


def test_the_agent_turns_the_incident_records_replay_field_into_the_label() -> None:
    record = delay_record("inc-1", {"hub": "HUB-A"}, orders=3, title="hub=HUB-A: 3 SKUs stalled", replay="olist")
    assert incident_from_record(record).labels[REPLAY_LABEL] == "olist"
    assert REPLAY_LABEL not in incident_from_record({**record, "replay": None}).labels
