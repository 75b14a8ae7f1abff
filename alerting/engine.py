"""The alerting engine: a pure, serializable state machine over incidents and time.

Every entry point takes ``now`` and returns a list of decisions
(:class:`~alerting.decisions.Notification` to send, :class:`~alerting.decisions.AlertEvent`
to record). It never reads a clock, sends anything or touches Kafka, so the worker (or a
dedicated alerting agent) drives it::

    engine = AlertEngine.from_dict(policy, table.get("engine") or {}, links=signer)
    decisions = engine.observe_incident(event, now)   # or ack / resolve / silence / tick
    table["engine"] = engine.to_dict()                # same changelog as the outbox
    outbox.add_all(d for d in decisions if isinstance(d, Notification), now)

Pipeline per alert, as in Alertmanager: route (tree) -> group (key) -> mute (inhibition,
silences) -> wait/flush (group_wait, group_interval, repeat_interval); then, where the
tier pages, escalation steps until someone acknowledges.

Ids are deterministic (hashes of route, group key and time; per-alert counters), so
replaying the same calls on a restored state yields the same decisions with the same ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerting.decisions import (
    TAG_LABELS,
    AlertEvent,
    AlertEventType,
    Decision,
    Notification,
    NotificationKind,
)
from alerting.escalation import EscalationProgress, Target
from alerting.incident import IncidentEvent, IncidentState
from alerting.inhibition import inhibitors
from alerting.links import LinkAction, LinkSigner
from alerting.matchers import Matcher, matches_all, parse_matcher
from alerting.messages import MessageContext, render
from alerting.policy import AlertPolicy
from alerting.routing import match_routes
from alerting.schedules import Override
from alerting.silences import Silence
from alerting.state import AlertRecord, AlertStatus, EngineState, IncidentRecord, earliest
from alerting.tier import Tier, next_tier

AUTO = "auto"
#: Label of incidents from a replay of history (``orderradar import --replay``): their
#: alerts are recorded, grouped apart from live ones and marked, but notify no one.
REPLAY_LABEL = "replay"


class UnknownAlertError(KeyError):
    """No alert with this id (never existed, or dropped after ``retention``)."""

    def __str__(self) -> str:
        return f"unknown alert {self.args[0]!r}"


class UnknownSilenceError(KeyError):
    def __str__(self) -> str:
        return f"unknown silence {self.args[0]!r}"


@dataclass
class _Out:
    decisions: list[Decision] = field(default_factory=list)


def _key_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


class AlertEngine:
    """See the module docstring. Not thread-safe: one owner drives it."""

    def __init__(
        self,
        policy: AlertPolicy,
        *,
        links: LinkSigner | None = None,
        state: EngineState | None = None,
    ) -> None:
        self.policy = policy
        self.links = links
        self.state = state or EngineState()
        self._source_cache: dict[str, tuple[tuple[datetime, Tier, IncidentState], bool]] = {}

    # -- persistence ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (no secrets, no policy)."""
        return self.state.model_dump(mode="json")

    @classmethod
    def from_dict(cls, policy: AlertPolicy, data: dict[str, Any], *, links: LinkSigner | None = None) -> AlertEngine:
        """Restore; an empty dict gives a fresh engine."""
        state = EngineState.model_validate(data) if data else EngineState()
        return cls(policy, links=links, state=state)

    # -- read side -----------------------------------------------------------------

    def alert(self, alert_id: str) -> AlertRecord:
        try:
            return self.state.alerts[alert_id]
        except KeyError:
            raise UnknownAlertError(alert_id) from None

    def alerts(self, *, include_resolved: bool = False) -> list[AlertRecord]:
        return [a for a in self.state.alerts.values() if include_resolved or a.status is not AlertStatus.RESOLVED]

    def alerts_for_incident(self, incident_id: str) -> list[AlertRecord]:
        record = self.state.incidents.get(incident_id)
        if record is None:
            return []
        return [self.state.alerts[a] for a in record.alert_ids if a in self.state.alerts]

    def next_due(self) -> datetime | None:
        """Earliest time a timer (flush, escalation, silence end, downgrade) is due.

        Tiers that depend on duration or time-to-promise can also rise between timers,
        so the worker should tick at least every minute besides.
        """
        times: list[datetime | None] = []
        for a in self.alerts():
            if a.muted:
                continue
            times.append(a.next_flush_at)
            if a.escalation is not None and a.status is AlertStatus.FIRING:
                times.append(a.escalation.next_at)
        hold = self.policy.tiers.downgrade_after
        for rec in self.state.incidents.values():
            if rec.active and rec.lower_since is not None:
                times.append(rec.lower_since + hold)
        for silence in self.state.silences.values():
            if silence.expired_at is None:
                times.append(silence.ends_at)
        return earliest(*times)

    # -- commands ------------------------------------------------------------------

    def observe_incident(self, event: IncidentEvent, now: datetime) -> list[Decision]:
        """Take a new incident snapshot; older snapshots (by ``updated_at``) are ignored."""
        out = _Out()
        rec = self.state.incidents.get(event.incident_id)
        if rec is None:
            if event.state is not IncidentState.RESOLVED:
                rec = IncidentRecord(event=event, tier=self.policy.tiers.compute(event, now))
                self.state.incidents[event.incident_id] = rec
                self._route(rec, now, out)
        elif event.updated_at >= rec.event.updated_at:
            reopened = not rec.active and event.state is not IncidentState.RESOLVED
            rec.event = event
            if event.state is IncidentState.RESOLVED:
                rec.resolved_at = rec.resolved_at or now
            elif reopened:
                rec.resolved_at = None
                rec.closed_at_tier = None
                rec.lower_since = None
                rec.tier = self.policy.tiers.compute(event, now)
                self._route(rec, now, out)
        self._evaluate(now, out, {event.incident_id})
        return out.decisions

    def ack(self, alert_id: str, user: str, now: datetime) -> list[Decision]:
        """Acknowledge: escalation and reminders stop. Idempotent."""
        a = self.alert(alert_id)
        out = _Out()
        if a.status in (AlertStatus.PENDING, AlertStatus.FIRING):
            a.status = AlertStatus.ACKED
            a.acked_by, a.acked_at = user, now
            if a.escalation is not None:
                a.escalation.stop()
            self._record(a, AlertEventType.ACKED, now, out, by=user)
            for receiver in list(a.notified):
                self._notify(a, receiver, NotificationKind.ACKED, now, out, by=user)
        self._evaluate(now, out, set(a.members))
        return out.decisions

    def resolve(self, alert_id: str, user: str, now: datetime) -> list[Decision]:
        """Resolve by hand: one resolved notice per receiver told. Idempotent.

        The incidents stay out of new alerts until their tier rises above the current one.
        """
        a = self.alert(alert_id)
        out = _Out()
        if a.status is not AlertStatus.RESOLVED:
            for member in a.members:
                rec = self.state.incidents.get(member)
                if rec is not None and rec.active:
                    rec.closed_at_tier = rec.tier
            self._resolve_alert(a, now, user, out)
        self._evaluate(now, out, set(a.members))
        return out.decisions

    def silence(
        self,
        matchers: Sequence[str | Matcher],
        created_by: str,
        now: datetime,
        *,
        ends_at: datetime | None = None,
        duration: timedelta | None = None,
        until_resolved: bool = False,
        comment: str = "",
    ) -> list[Decision]:
        """Create a silence; the first decision is its ``silence_created`` record.

        Give exactly one of ``ends_at``, ``duration`` or ``until_resolved=True``.
        """
        parsed = tuple(parse_matcher(m) for m in matchers)
        if not parsed:
            raise ValueError("a silence needs at least one matcher")
        given = sum(x is not None for x in (ends_at, duration)) + int(until_resolved)
        if given != 1:
            raise ValueError("give exactly one of ends_at, duration or until_resolved=True")
        end = ends_at if ends_at is not None else (now + duration if duration is not None else None)
        if end is not None and end <= now:
            raise ValueError("silence would end before it starts")
        silence_id = "sil-" + _key_hash(created_by, now.isoformat(), ",".join(map(str, parsed)), str(self.state.seq))
        self.state.seq += 1
        silence = Silence(
            silence_id=silence_id,
            matchers=parsed,
            created_by=created_by,
            comment=comment,
            starts_at=now,
            ends_at=end,
            until_resolved=until_resolved,
        )
        self.state.silences[silence_id] = silence
        out = _Out()
        detail = ",".join(map(str, parsed)) + (" until resolved" if until_resolved else f" until {end}")
        self._silence_record(silence, AlertEventType.SILENCE_CREATED, now, out, by=created_by, detail=detail)
        self._evaluate(now, out)
        return out.decisions

    def expire_silence(self, silence_id: str, user: str, now: datetime) -> list[Decision]:
        try:
            silence = self.state.silences[silence_id]
        except KeyError:
            raise UnknownSilenceError(silence_id) from None
        out = _Out()
        if silence.expired_at is None:
            silence.expired_at = now
            self._silence_record(silence, AlertEventType.SILENCE_EXPIRED, now, out, by=user)
        self._evaluate(now, out)
        return out.decisions

    def override(
        self,
        schedule: str,
        user: str,
        start: datetime,
        end: datetime,
        now: datetime,
        *,
        replaces: str | None = None,
    ) -> list[Decision]:
        """Add an on-call override at run time (a shift swap or cover)."""
        if schedule not in self.policy.schedules:
            raise KeyError(f"unknown schedule {schedule!r}")
        if user not in self.policy.users:
            raise KeyError(f"unknown user {user!r}")
        self.state.overrides.setdefault(schedule, []).append(
            Override(user=user, start=start, end=end, replaces=replaces)
        )
        out = _Out()
        self._evaluate(now, out)
        return out.decisions

    def tick(self, now: datetime) -> list[Decision]:
        """Advance time: flushes, escalations, silence expiry, tier changes, cleanup."""
        out = _Out()
        self._evaluate(now, out)
        self._forget_old(now)
        return out.decisions

    # -- routing -------------------------------------------------------------------

    def _route(self, rec: IncidentRecord, now: datetime, out: _Out) -> None:
        labels = rec.event.match_labels()
        for target in match_routes(self.policy.route, labels):
            group_labels = target.group_labels(labels)
            if labels.get(REPLAY_LABEL):
                group_labels = {**group_labels, REPLAY_LABEL: labels[REPLAY_LABEL]}  # never with live ones
            group_key = target.route_id + "|" + json.dumps(group_labels, sort_keys=True, ensure_ascii=False)
            alert_id = self.state.open_groups.get(group_key)
            if alert_id is None:
                alert_id = "al-" + _key_hash(group_key, now.isoformat(), rec.incident_id)
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
                self.state.alerts[alert_id] = a
                self.state.open_groups[group_key] = alert_id
                replay = labels.get(REPLAY_LABEL)
                detail = f"route={target.route_id}" + (f" replay={replay}: recorded, not sent" if replay else "")
                self._record(a, AlertEventType.FIRED, now, out, detail=detail)
            else:
                a = self.state.alerts[alert_id]
                if rec.incident_id not in a.members:
                    a.members.append(rec.incident_id)
            if alert_id not in rec.alert_ids:
                rec.alert_ids.append(alert_id)

    # -- evaluation ----------------------------------------------------------------

    def _evaluate(self, now: datetime, out: _Out, scope: set[str] | None = None) -> None:
        """Bring tiers, mutes and alerts up to ``now``.

        ``scope`` names the incidents whose snapshot changed; only they and the alerts
        they (or the incidents whose mute status they changed) belong to are looked at.
        ``None`` looks at everything: ``tick`` does that, so every timer fires there.
        """
        self._update_tiers(now, out, scope)
        self._expire_silences(now, out)
        touched = self._update_mutes(now, out, scope)
        open_alerts = (a for a in self.state.alerts.values() if a.status is not AlertStatus.RESOLVED)
        if scope is not None:
            wanted = {
                alert_id
                for incident_id in scope | touched
                if incident_id in self.state.incidents
                for alert_id in self.state.incidents[incident_id].alert_ids
            }
            open_alerts = (a for a in open_alerts if a.alert_id in wanted)
        for a in sorted(open_alerts, key=lambda a: (a.created_at, a.alert_id)):
            self._update_alert(a, now, out)

    def _update_tiers(self, now: datetime, out: _Out, scope: set[str] | None) -> None:
        hold = self.policy.tiers.downgrade_after
        records = (
            self.state.incidents.values()
            if scope is None
            else [self.state.incidents[i] for i in sorted(scope) if i in self.state.incidents]
        )
        for rec in list(records):
            if not rec.active:
                continue
            computed = self.policy.tiers.compute(rec.event, now)
            rec.tier, rec.lower_since = next_tier(rec.tier, computed, rec.lower_since, now, hold)
            closed = rec.closed_at_tier
            if closed is not None and rec.tier.severity > closed.severity:
                # Worse than when someone closed it by hand: it deserves a new alert.
                rec.closed_at_tier = None
                self._route(rec, now, out)

    def _expire_silences(self, now: datetime, out: _Out) -> None:
        for silence in self.state.silences.values():
            if silence.expired_at is None and silence.due_to_expire(now, _Resolved(self.state)):
                silence.expired_at = now
                self._silence_record(silence, AlertEventType.SILENCE_EXPIRED, now, out, by=AUTO)

    def _is_source(self, rec: IncidentRecord) -> bool:
        """Can ``rec`` inhibit anything? Cached per incident (derived, never persisted)."""
        key = (rec.event.updated_at, rec.tier, rec.event.state)
        cached = self._source_cache.get(rec.incident_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        labels = rec.labels()
        found = any(matches_all(rule.source_matchers, labels) for rule in self.policy.inhibit_rules)
        self._source_cache[rec.incident_id] = (key, found)
        return found

    def _update_mutes(self, now: datetime, out: _Out, scope: set[str] | None) -> set[str]:
        """Recompute silences and inhibition; return the incidents whose mute state changed."""
        incidents = self.state.incidents
        rules = self.policy.inhibit_rules
        # Only incidents that can be a source (a region, a hub) are compared against every
        # target, so thousands of per-order incidents cost O(n), not O(n^2).
        sources = {i: r.labels() for i, r in incidents.items() if r.active and self._is_source(r)}
        if scope is None or any(i in incidents and self._is_source(incidents[i]) for i in scope):
            targets = [r for r in incidents.values() if r.active or r.muted]
        else:
            targets = [incidents[i] for i in sorted(scope) if i in incidents]
        silences = [s for s in self.state.silences.values() if s.active(now)]
        changed: set[str] = set()
        for rec in targets:
            incident_id = rec.incident_id
            silenced_by: list[str] = []
            inhibited_by: list[str] = []
            if rec.active:
                labels = rec.labels()
                for silence in silences:
                    if silence.mutes(labels, now):
                        silenced_by.append(silence.silence_id)
                        if incident_id not in silence.matched:
                            silence.matched.append(incident_id)
                inhibited_by = inhibitors(rules, incident_id, labels, sources) if sources else []
            changes: list[tuple[AlertEventType, str]] = []
            if inhibited_by and inhibited_by != rec.inhibited_by:
                changes.append((AlertEventType.INHIBITED, "by incidents " + ",".join(inhibited_by)))
            if silenced_by and silenced_by != rec.silenced_by:
                changes.append((AlertEventType.SILENCED, "by silences " + ",".join(silenced_by)))
            if rec.muted and not (inhibited_by or silenced_by) and rec.active:
                changes.append((AlertEventType.UNMUTED, ""))
            if (inhibited_by, silenced_by) != (rec.inhibited_by, rec.silenced_by):
                changed.add(incident_id)
            rec.inhibited_by, rec.silenced_by = inhibited_by, silenced_by
            for event, detail in changes:
                for alert_id in rec.alert_ids:
                    a = self.state.alerts.get(alert_id)
                    if a is not None and a.status is not AlertStatus.RESOLVED:
                        self._record(a, event, now, out, detail=f"{incident_id} {detail}".strip())
        return changed

    def _update_alert(self, a: AlertRecord, now: datetime, out: _Out) -> None:
        members = [self.state.incidents[m] for m in a.members if m in self.state.incidents]
        live = [m for m in members if m.active]
        if not live:
            self._resolve_alert(a, now, AUTO, out)
            return
        unmuted = [m for m in live if not m.muted]
        tier = max((m.tier for m in (unmuted or live)), key=lambda t: t.severity)
        muted = not unmuted
        if muted != a.muted:
            a.muted = muted
            if a.escalation is not None:
                if muted:
                    a.escalation.pause(now)
                else:
                    a.escalation.resume(now)
        if tier is not a.tier:
            previous, a.tier = a.tier, tier
            self._record(a, AlertEventType.TIER_CHANGED, now, out, detail=f"{previous.value}->{tier.value}")
        if muted:
            return
        if a.next_flush_at is not None and a.next_flush_at <= now:
            self._flush(a, now, out)
        if a.status is not AlertStatus.PENDING:
            self._apply_tier(a, now, out)
            self._escalate(a, now, out)

    def _fingerprint(self, a: AlertRecord) -> str:
        parts = [a.tier.value]
        for member in sorted(a.members):
            rec = self.state.incidents.get(member)
            if rec is not None and rec.active:
                parts.append(f"{member}:{rec.event.state.value}:{rec.tier.value}:{int(rec.muted)}")
        return _key_hash(*parts)

    def _flush(self, a: AlertRecord, now: datetime, out: _Out) -> None:
        level = self.policy.tiers.level(a.tier)
        fingerprint = self._fingerprint(a)
        if a.status is AlertStatus.PENDING:
            a.status = AlertStatus.FIRING
            if level.notify:
                self._notify(a, a.receiver, NotificationKind.FIRING, now, out)
            a.last_sent_at = now
        elif fingerprint != a.fingerprint:
            if level.notify or a.receiver in a.notified:
                self._notify(a, a.receiver, self._first_or(a, a.receiver, NotificationKind.UPDATE), now, out)
                a.last_sent_at = now
        elif (
            a.status is AlertStatus.FIRING
            and level.notify
            and (a.last_sent_at is None or now - a.last_sent_at >= a.repeat_interval)
        ):
            self._notify(a, a.receiver, self._first_or(a, a.receiver, NotificationKind.REPEAT), now, out)
            a.last_sent_at = now
        a.fingerprint = fingerprint
        a.next_flush_at = now + a.group_interval

    def _apply_tier(self, a: AlertRecord, now: datetime, out: _Out) -> None:
        """Make paging and ``also_notify`` match the current tier (idempotent)."""
        level = self.policy.tiers.level(a.tier)
        replay = bool(a.group_labels.get(REPLAY_LABEL))  # a replay of history pages no one
        if (
            level.page
            and not replay
            and a.status is AlertStatus.FIRING
            and a.escalation_policy
            and a.escalation is None
        ):
            a.escalation = EscalationProgress(policy=a.escalation_policy, next_at=now)
        elif not level.page and a.escalation is not None and a.escalation.running:
            a.escalation = None
            self._record(a, AlertEventType.ESCALATION_STOPPED, now, out, detail=f"tier {a.tier.value} does not page")
        if level.also_notify and a.tier not in a.also_notified:
            a.also_notified.append(a.tier)
            for receiver, user in self._resolve_targets(a, level.also_notify, now, out):
                self._notify(a, receiver, self._first_or(a, receiver, NotificationKind.UPDATE), now, out, user=user)

    def _escalate(self, a: AlertRecord, now: datetime, out: _Out) -> None:
        esc = a.escalation
        if esc is None or esc.stopped or esc.next_at is None or esc.next_at > now:
            return
        if a.status is not AlertStatus.FIRING:
            return
        policy = self.policy.escalation_policies.get(esc.policy)
        if policy is None or esc.step >= len(policy.steps):
            # The policy changed under a running escalation: stop rather than guess.
            esc.stop()
            self._record(a, AlertEventType.ESCALATION_STOPPED, now, out, detail=f"policy {esc.policy!r} changed")
            return
        step = policy.steps[esc.step]
        targets = self._resolve_targets(a, step.targets, now, out)
        for receiver, user in targets:
            self._notify(a, receiver, NotificationKind.PAGE, now, out, user=user, step=esc.step, round=esc.round)
        who = ",".join(sorted({u or r for r, u in targets}))
        self._record(a, AlertEventType.ESCALATED, now, out, step=esc.step, detail=f"round={esc.round} to={who}")
        esc.advance(policy, now)

    def _resolve_targets(
        self, a: AlertRecord, targets: Sequence[Target], now: datetime, out: _Out
    ) -> list[tuple[str, str | None]]:
        """Targets -> unique ``(receiver, user)`` pairs; empty schedules go to the fallback."""
        found: list[tuple[str, str | None]] = []
        for target in targets:
            user = target.user
            if target.schedule is not None:
                schedule = self.policy.schedules[target.schedule]
                extra = tuple(self.state.overrides.get(target.schedule, ()))
                user = schedule.on_call(now, extra)
                if user is None:
                    self._record(
                        a,
                        AlertEventType.UNROUTABLE,
                        now,
                        out,
                        detail=f"schedule {target.schedule!r} has nobody on call; sent to fallback",
                    )
                    found.append((self.policy.fallback, None))
                    continue
            if user is not None:
                found.extend((receiver, user) for receiver in self.policy.users[user].receivers)
            elif target.receiver is not None:
                found.append((target.receiver, None))
        unique: dict[str, str | None] = {}
        for receiver, user in found:
            unique.setdefault(receiver, user)
        return list(unique.items())

    def _resolve_alert(self, a: AlertRecord, now: datetime, by: str, out: _Out) -> None:
        a.status = AlertStatus.RESOLVED
        a.resolved_at, a.resolved_by = now, by
        if a.escalation is not None:
            a.escalation.stop()
        if self.state.open_groups.get(a.group_key) == a.alert_id:
            del self.state.open_groups[a.group_key]
        self._record(a, AlertEventType.RESOLVED, now, out, by=by)
        for receiver in list(a.notified):
            self._notify(a, receiver, NotificationKind.RESOLVED, now, out, by=None if by == AUTO else by)

    # -- output --------------------------------------------------------------------

    def _first_or(self, a: AlertRecord, receiver: str, kind: NotificationKind) -> NotificationKind:
        return kind if receiver in a.notified else NotificationKind.FIRING

    def _members(self, a: AlertRecord) -> list[IncidentEvent]:
        events = [self.state.incidents[m].event for m in a.members if m in self.state.incidents]
        return events

    def _common_labels(self, a: AlertRecord) -> dict[str, str]:
        members = self._members(a)
        first = members[0] if members else None
        base = {**first.labels, "kind": first.kind} if first is not None else {}
        return {**base, **{k: v for k, v in a.group_labels.items() if v}}

    def _notify(
        self,
        a: AlertRecord,
        receiver: str,
        kind: NotificationKind,
        now: datetime,
        out: _Out,
        *,
        user: str | None = None,
        by: str | None = None,
        step: int | None = None,
        round: int | None = None,
    ) -> None:
        if a.group_labels.get(REPLAY_LABEL):
            return  # a replay of history: the alert is recorded (marked), nobody is notified
        if not receiver or receiver not in self.policy.receivers:
            receiver = self.policy.fallback
        language = self.policy.language_of(receiver)
        members = self._members(a)
        if kind is not NotificationKind.RESOLVED:
            members = [m for m in members if m.state is not IncidentState.RESOLVED] or members
        ack_url = resolve_url = None
        if self.links is not None and kind is not NotificationKind.RESOLVED:
            expires = now + self.policy.link_ttl
            if a.status is not AlertStatus.ACKED:
                ack_url = self.links.link(a.alert_id, LinkAction.ACK, expires)
            resolve_url = self.links.link(a.alert_id, LinkAction.RESOLVE, expires)
        title, text = render(
            MessageContext(
                kind=kind,
                tier=a.tier,
                incidents=members,
                now=now,
                language=language,
                time_zone=self.policy.time_zone_of(receiver),
                step=step,
                round=round,
                user=user,
                by=by,
                ack_url=ack_url,
                resolve_url=resolve_url,
            )
        )
        notification = Notification(
            notification_id=a.next_id("n"),
            alert_id=a.alert_id,
            kind=kind,
            receiver=receiver,
            language=language,
            tier=a.tier,
            title=title,
            text=text,
            labels=self._common_labels(a),
            incident_ids=tuple(a.members),
            created_at=now,
            step=step,
            round=round,
            user=user,
            ack_url=ack_url,
            resolve_url=resolve_url,
        )
        out.decisions.append(notification)
        if receiver not in a.notified and kind is not NotificationKind.RESOLVED:
            a.notified.append(receiver)
        self._record(
            a,
            AlertEventType.NOTIFIED,
            now,
            out,
            receiver=receiver,
            step=step,
            notification_id=notification.notification_id,
            by=user,
            detail=kind.value,
        )

    def _record(
        self,
        a: AlertRecord,
        event: AlertEventType,
        now: datetime,
        out: _Out,
        *,
        by: str | None = None,
        receiver: str | None = None,
        step: int | None = None,
        notification_id: str | None = None,
        detail: str = "",
    ) -> None:
        labels = self._common_labels(a)
        out.decisions.append(
            AlertEvent(
                record_id=a.next_id("r"),
                alert_id=a.alert_id,
                event=event,
                at=now,
                tier=a.tier,
                incident_ids=tuple(a.members),
                labels={k: labels[k] for k in (*TAG_LABELS, REPLAY_LABEL) if labels.get(k)},
                by=by,
                receiver=receiver,
                step=step,
                notification_id=notification_id,
                detail=detail,
            )
        )

    def _silence_record(
        self, silence: Silence, event: AlertEventType, now: datetime, out: _Out, *, by: str, detail: str = ""
    ) -> None:
        out.decisions.append(
            AlertEvent(
                record_id=f"{silence.silence_id}/r{self.state.next_id('')}",
                alert_id="",
                silence_id=silence.silence_id,
                event=event,
                at=now,
                by=by,
                detail=detail,
            )
        )

    # -- housekeeping --------------------------------------------------------------

    def _forget_old(self, now: datetime) -> None:
        horizon = now - self.policy.retention
        alerts = self.state.alerts
        for alert_id in [i for i, a in alerts.items() if a.resolved_at is not None and a.resolved_at <= horizon]:
            del alerts[alert_id]
        for incident_id in [
            i
            for i, r in self.state.incidents.items()
            if r.resolved_at is not None and r.resolved_at <= horizon and not any(a in alerts for a in r.alert_ids)
        ]:
            del self.state.incidents[incident_id]
        for silence_id in [i for i, s in self.state.silences.items() if _ended_before(s, horizon)]:
            del self.state.silences[silence_id]
        for schedule, overrides in list(self.state.overrides.items()):
            kept = [o for o in overrides if o.end > now]
            if kept:
                self.state.overrides[schedule] = kept
            else:
                del self.state.overrides[schedule]


def _ended_before(silence: Silence, horizon: datetime) -> bool:
    ended = silence.expired_at or silence.ends_at
    return ended is not None and ended <= horizon


class _Resolved:
    """``incident id -> resolved?`` without building a dict of every incident."""

    def __init__(self, state: EngineState) -> None:
        self._incidents = state.incidents

    def get(self, incident_id: str, default: bool) -> bool:
        rec = self._incidents.get(incident_id)
        return default if rec is None else not rec.active
