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
tier pages, escalation steps until someone acknowledges. The steps live by role:
:mod:`alerting.grouping` (route, group, flush), :mod:`alerting.muting` (silences,
inhibition), :mod:`alerting.paging` (escalation, on-call targets); :mod:`alerting.emitter`
renders and collects the decisions of one call. This module keeps the state machine:
commands, tiers over time, an alert's life and housekeeping.

Ids are deterministic (hashes of route, group key and time; per-alert counters), so
replaying the same calls on a restored state yields the same decisions with the same ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from alerting.decisions import AlertEventType, Decision, NotificationKind
from alerting.emitter import AUTO, REPLAY_LABEL, Emitter, key_hash
from alerting.grouping import flush, route
from alerting.incident import IncidentEvent, IncidentState
from alerting.links import LinkSigner
from alerting.matchers import Matcher, parse_matcher
from alerting.muting import Muting, expire_silences
from alerting.paging import apply_tier, escalate
from alerting.policy import AlertPolicy
from alerting.schedules import Override
from alerting.silences import Silence
from alerting.state import AlertRecord, AlertStatus, EngineState, IncidentRecord, earliest
from alerting.tier import next_tier

__all__ = ["AUTO", "REPLAY_LABEL", "AlertEngine", "UnknownAlertError", "UnknownSilenceError"]


class UnknownAlertError(KeyError):
    """No alert with this id (never existed, or dropped after ``retention``)."""

    def __str__(self) -> str:
        return f"unknown alert {self.args[0]!r}"


class UnknownSilenceError(KeyError):
    def __str__(self) -> str:
        return f"unknown silence {self.args[0]!r}"


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
        self._muting = Muting(policy)

    def _emitter(self) -> Emitter:
        return Emitter(self.policy, self.state, self.links)

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
        out = self._emitter()
        rec = self.state.incidents.get(event.incident_id)
        if rec is None:
            if event.state is not IncidentState.RESOLVED:
                rec = IncidentRecord(event=event, tier=self.policy.tiers.compute(event, now))
                self.state.incidents[event.incident_id] = rec
                route(rec, now, out)
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
                route(rec, now, out)
        self._evaluate(now, out, {event.incident_id})
        return out.decisions

    def ack(self, alert_id: str, user: str, now: datetime) -> list[Decision]:
        """Acknowledge: escalation and reminders stop. Idempotent."""
        a = self.alert(alert_id)
        out = self._emitter()
        if a.status in (AlertStatus.PENDING, AlertStatus.FIRING):
            a.status = AlertStatus.ACKED
            a.acked_by, a.acked_at = user, now
            if a.escalation is not None:
                a.escalation.stop()
            out.record(a, AlertEventType.ACKED, now, by=user)
            for receiver in list(a.notified):
                out.notify(a, receiver, NotificationKind.ACKED, now, by=user)
        self._evaluate(now, out, set(a.members))
        return out.decisions

    def resolve(self, alert_id: str, user: str, now: datetime) -> list[Decision]:
        """Resolve by hand: one resolved notice per receiver told. Idempotent.

        The incidents stay out of new alerts until their tier rises above the current one.
        """
        a = self.alert(alert_id)
        out = self._emitter()
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
        silence_id = "sil-" + key_hash(created_by, now.isoformat(), ",".join(map(str, parsed)), str(self.state.seq))
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
        out = self._emitter()
        detail = ",".join(map(str, parsed)) + (" until resolved" if until_resolved else f" until {end}")
        out.silence_record(silence, AlertEventType.SILENCE_CREATED, now, by=created_by, detail=detail)
        self._evaluate(now, out)
        return out.decisions

    def expire_silence(self, silence_id: str, user: str, now: datetime) -> list[Decision]:
        try:
            silence = self.state.silences[silence_id]
        except KeyError:
            raise UnknownSilenceError(silence_id) from None
        out = self._emitter()
        if silence.expired_at is None:
            silence.expired_at = now
            out.silence_record(silence, AlertEventType.SILENCE_EXPIRED, now, by=user)
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
        out = self._emitter()
        self._evaluate(now, out)
        return out.decisions

    def tick(self, now: datetime) -> list[Decision]:
        """Advance time: flushes, escalations, silence expiry, tier changes, cleanup."""
        out = self._emitter()
        self._evaluate(now, out)
        self._forget_old(now)
        return out.decisions

    # -- evaluation ----------------------------------------------------------------

    def _evaluate(self, now: datetime, out: Emitter, scope: set[str] | None = None) -> None:
        """Bring tiers, mutes and alerts up to ``now``.

        ``scope`` names the incidents whose snapshot changed; only they and the alerts
        they (or the incidents whose mute status they changed) belong to are looked at.
        ``None`` looks at everything: ``tick`` does that, so every timer fires there.
        """
        self._update_tiers(now, out, scope)
        expire_silences(now, out)
        touched = self._muting.update(now, out, scope)
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

    def _update_tiers(self, now: datetime, out: Emitter, scope: set[str] | None) -> None:
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
                route(rec, now, out)

    def _update_alert(self, a: AlertRecord, now: datetime, out: Emitter) -> None:
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
            out.record(a, AlertEventType.TIER_CHANGED, now, detail=f"{previous.value}->{tier.value}")
        if muted:
            return
        if a.next_flush_at is not None and a.next_flush_at <= now:
            flush(a, now, out)
        if a.status is not AlertStatus.PENDING:
            apply_tier(a, now, out)
            escalate(a, now, out)

    def _resolve_alert(self, a: AlertRecord, now: datetime, by: str, out: Emitter) -> None:
        a.status = AlertStatus.RESOLVED
        a.resolved_at, a.resolved_by = now, by
        if a.escalation is not None:
            a.escalation.stop()
        if self.state.open_groups.get(a.group_key) == a.alert_id:
            del self.state.open_groups[a.group_key]
        out.record(a, AlertEventType.RESOLVED, now, by=by)
        for receiver in list(a.notified):
            out.notify(a, receiver, NotificationKind.RESOLVED, now, by=None if by == AUTO else by)

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
        for silence_id in [i for i, s in self.state.silences.items() if s.ended_before(horizon)]:
            del self.state.silences[silence_id]
        for schedule, overrides in list(self.state.overrides.items()):
            kept = [o for o in overrides if o.end > now]
            if kept:
                self.state.overrides[schedule] = kept
            else:
                del self.state.overrides[schedule]
