"""The engine's output: what one engine call decided, as rendered notifications and records.

An :class:`Emitter` lives for one engine call (``observe_incident``, ``ack``, ``tick``...):
it collects the :class:`~alerting.decisions.Notification` to send and the
:class:`~alerting.decisions.AlertEvent` to record, in the order the engine decides them.
It also carries the policy and state the engine's parts (:mod:`alerting.grouping`,
:mod:`alerting.paging`, :mod:`alerting.muting`) work on, so they share one signature.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from alerting.decisions import TAG_LABELS, AlertEvent, AlertEventType, Decision, Notification, NotificationKind
from alerting.incident import IncidentEvent, IncidentState
from alerting.links import LinkAction, LinkSigner
from alerting.messages import MessageContext, render
from alerting.policy import AlertPolicy
from alerting.silences import Silence
from alerting.state import AlertRecord, AlertStatus, EngineState

#: ``by`` of what the engine does itself (a resolution when every member resolved, an expiry).
AUTO = "auto"
#: Label of incidents from a replay of history (``orderradar import --replay``): their
#: alerts are recorded, grouped apart from live ones and marked, but notify no one.
REPLAY_LABEL = "replay"


def key_hash(*parts: str) -> str:
    """A short deterministic id part: replaying the same calls yields the same ids."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


class Emitter:
    """Decisions of one engine call, over the engine's policy, state and link signer."""

    def __init__(self, policy: AlertPolicy, state: EngineState, links: LinkSigner | None) -> None:
        self.policy = policy
        self.state = state
        self.links = links
        self.decisions: list[Decision] = []

    def first_or(self, a: AlertRecord, receiver: str, kind: NotificationKind) -> NotificationKind:
        """``kind``, or ``FIRING`` for a receiver told nothing of this alert yet."""
        return kind if receiver in a.notified else NotificationKind.FIRING

    def members(self, a: AlertRecord) -> list[IncidentEvent]:
        return [self.state.incidents[m].event for m in a.members if m in self.state.incidents]

    def common_labels(self, a: AlertRecord) -> dict[str, str]:
        members = self.members(a)
        first = members[0] if members else None
        base = {**first.labels, "kind": first.kind} if first is not None else {}
        return {**base, **{k: v for k, v in a.group_labels.items() if v}}

    def notify(
        self,
        a: AlertRecord,
        receiver: str,
        kind: NotificationKind,
        now: datetime,
        *,
        user: str | None = None,
        by: str | None = None,
        step: int | None = None,
        round: int | None = None,
    ) -> None:
        if a.group_labels.get(REPLAY_LABEL):
            return  # a replay of history: the alert is recorded (marked), nobody is notified
        policy = self.policy
        if not receiver or receiver not in policy.receivers:
            receiver = policy.fallback
        language = policy.language_of(receiver)
        members = self.members(a)
        if kind is not NotificationKind.RESOLVED:
            members = [m for m in members if m.state is not IncidentState.RESOLVED] or members
        ack_url = resolve_url = None
        if self.links is not None and kind is not NotificationKind.RESOLVED:
            expires = now + policy.link_ttl
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
                time_zone=policy.time_zone_of(receiver),
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
            labels=self.common_labels(a),
            incident_ids=tuple(a.members),
            created_at=now,
            step=step,
            round=round,
            user=user,
            ack_url=ack_url,
            resolve_url=resolve_url,
        )
        self.decisions.append(notification)
        if receiver not in a.notified and kind is not NotificationKind.RESOLVED:
            a.notified.append(receiver)
        self.record(
            a,
            AlertEventType.NOTIFIED,
            now,
            receiver=receiver,
            step=step,
            notification_id=notification.notification_id,
            by=user,
            detail=kind.value,
        )

    def record(
        self,
        a: AlertRecord,
        event: AlertEventType,
        now: datetime,
        *,
        by: str | None = None,
        receiver: str | None = None,
        step: int | None = None,
        notification_id: str | None = None,
        detail: str = "",
    ) -> None:
        labels = self.common_labels(a)
        self.decisions.append(
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

    def silence_record(
        self, silence: Silence, event: AlertEventType, now: datetime, *, by: str, detail: str = ""
    ) -> None:
        self.decisions.append(
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
