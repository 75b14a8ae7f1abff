"""Mutes: which incidents silences and inhibition rules hold quiet, and silence expiry.

A muted incident stays in its alert but counts for nothing there; an alert whose live
members are all muted pauses its escalation (:mod:`alerting.engine`). Changes are
recorded on every open alert of the incident (``inhibited``, ``silenced``, ``unmuted``).
"""

from __future__ import annotations

from datetime import datetime

from alerting.decisions import AlertEventType
from alerting.emitter import AUTO, Emitter
from alerting.incident import IncidentState
from alerting.inhibition import inhibitors
from alerting.matchers import matches_all
from alerting.policy import AlertPolicy
from alerting.state import AlertStatus, EngineState, IncidentRecord
from alerting.tier import Tier


class _Resolved:
    """``incident id -> resolved?`` without building a dict of every incident."""

    def __init__(self, state: EngineState) -> None:
        self._incidents = state.incidents

    def get(self, incident_id: str, default: bool) -> bool:
        rec = self._incidents.get(incident_id)
        return default if rec is None else not rec.active


def expire_silences(now: datetime, out: Emitter) -> None:
    """End the silences due at ``now`` (their end time, or all they matched resolved)."""
    resolved = _Resolved(out.state)
    for silence in out.state.silences.values():
        if silence.expired_at is None and silence.due_to_expire(now, resolved):
            silence.expired_at = now
            out.silence_record(silence, AlertEventType.SILENCE_EXPIRED, now, by=AUTO)


class Muting:
    """Recomputes silences and inhibition; remembers (not persisted) which incidents can inhibit."""

    def __init__(self, policy: AlertPolicy) -> None:
        self.policy = policy
        self._source_cache: dict[str, tuple[tuple[datetime, Tier, IncidentState], bool]] = {}

    def is_source(self, rec: IncidentRecord) -> bool:
        """Can ``rec`` inhibit anything? Cached per incident (derived, never persisted)."""
        key = (rec.event.updated_at, rec.tier, rec.event.state)
        cached = self._source_cache.get(rec.incident_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        labels = rec.labels()
        found = any(matches_all(rule.source_matchers, labels) for rule in self.policy.inhibit_rules)
        self._source_cache[rec.incident_id] = (key, found)
        return found

    def update(self, now: datetime, out: Emitter, scope: set[str] | None) -> set[str]:
        """Recompute silences and inhibition; return the incidents whose mute state changed."""
        state = out.state
        incidents = state.incidents
        rules = self.policy.inhibit_rules
        # Only incidents that can be a source (a region, a hub) are compared against every
        # target, so thousands of per-order incidents cost O(n), not O(n^2).
        sources = {i: r.labels() for i, r in incidents.items() if r.active and self.is_source(r)}
        if scope is None or any(i in incidents and self.is_source(incidents[i]) for i in scope):
            targets = [r for r in incidents.values() if r.active or r.muted]
        else:
            targets = [incidents[i] for i in sorted(scope) if i in incidents]
        silences = [s for s in state.silences.values() if s.active(now)]
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
                    a = state.alerts.get(alert_id)
                    if a is not None and a.status is not AlertStatus.RESOLVED:
                        out.record(a, event, now, detail=f"{incident_id} {detail}".strip())
        return changed
