"""Route and group, then wait and flush: the first steps of an alert, as in Alertmanager.

An incident is routed through the policy's tree (:func:`alerting.routing.match_routes`);
each matching route puts it into the open alert of its group key, or opens one that waits
``group_wait``. A flush sends the first notice, an update when the members changed, or a
reminder after ``repeat_interval``, at most every ``group_interval``.
"""

from __future__ import annotations

import json
from datetime import datetime

from alerting.decisions import AlertEventType, NotificationKind
from alerting.emitter import REPLAY_LABEL, Emitter, key_hash
from alerting.routing import match_routes
from alerting.state import AlertRecord, AlertStatus, EngineState, IncidentRecord


def route(rec: IncidentRecord, now: datetime, out: Emitter) -> None:
    """Put ``rec`` into the open alert of each matching route's group (new ones fire)."""
    state = out.state
    labels = rec.event.match_labels()
    for target in match_routes(out.policy.route, labels):
        group_labels = target.group_labels(labels)
        if labels.get(REPLAY_LABEL):
            group_labels = {**group_labels, REPLAY_LABEL: labels[REPLAY_LABEL]}  # never with live ones
        group_key = target.route_id + "|" + json.dumps(group_labels, sort_keys=True, ensure_ascii=False)
        alert_id = state.open_groups.get(group_key)
        if alert_id is None:
            alert_id = "al-" + key_hash(group_key, now.isoformat(), rec.incident_id)
            a = AlertRecord(
                alert_id=alert_id,
                route_id=target.route_id,
                group_key=group_key,
                group_labels=group_labels,
                receiver=target.receiver,
                escalation_policy=target.escalation,
                group_wait=target.group_wait,
                group_interval=target.group_interval,
                repeat_interval=target.repeat_interval,
                members=[rec.incident_id],
                tier=rec.tier,
                created_at=now,
                next_flush_at=now + target.group_wait,
            )
            state.alerts[alert_id] = a
            state.open_groups[group_key] = alert_id
            replay = labels.get(REPLAY_LABEL)
            detail = f"route={target.route_id}" + (f" replay={replay}: recorded, not sent" if replay else "")
            out.record(a, AlertEventType.FIRED, now, detail=detail)
        else:
            a = state.alerts[alert_id]
            if rec.incident_id not in a.members:
                a.members.append(rec.incident_id)
        if alert_id not in rec.alert_ids:
            rec.alert_ids.append(alert_id)


def fingerprint(a: AlertRecord, state: EngineState) -> str:
    """What a notice about ``a`` would say: tier and each live member's state, tier, mute."""
    parts = [a.tier.value]
    for member in sorted(a.members):
        rec = state.incidents.get(member)
        if rec is not None and rec.active:
            parts.append(f"{member}:{rec.event.state.value}:{rec.tier.value}:{int(rec.muted)}")
    return key_hash(*parts)


def flush(a: AlertRecord, now: datetime, out: Emitter) -> None:
    """A due flush: first notice, update, or reminder; the next one ``group_interval`` on."""
    level = out.policy.tiers.level(a.tier)
    current = fingerprint(a, out.state)
    if a.status is AlertStatus.PENDING:
        a.status = AlertStatus.FIRING
        if level.notify:
            out.notify(a, a.receiver, NotificationKind.FIRING, now)
        a.last_sent_at = now
    elif current != a.fingerprint:
        if level.notify or a.receiver in a.notified:
            out.notify(a, a.receiver, out.first_or(a, a.receiver, NotificationKind.UPDATE), now)
            a.last_sent_at = now
    elif (
        a.status is AlertStatus.FIRING
        and level.notify
        and (a.last_sent_at is None or now - a.last_sent_at >= a.repeat_interval)
    ):
        out.notify(a, a.receiver, out.first_or(a, a.receiver, NotificationKind.REPEAT), now)
        a.last_sent_at = now
    a.fingerprint = current
    a.next_flush_at = now + a.group_interval
