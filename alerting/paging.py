"""Paging: the tier's escalation and ``also_notify``, stepped through whoever is on call.

Where an alert's tier pages, its escalation policy starts once it fires and steps until
someone acknowledges; a tier that stops paging stops it. Schedule targets resolve to the
user on call at ``now`` (run-time overrides included); an empty schedule goes to the
policy's fallback receiver and is recorded as unroutable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from alerting.decisions import AlertEventType, NotificationKind
from alerting.emitter import REPLAY_LABEL, Emitter
from alerting.escalation import EscalationProgress, Target
from alerting.state import AlertRecord, AlertStatus


def apply_tier(a: AlertRecord, now: datetime, out: Emitter) -> None:
    """Make paging and ``also_notify`` match the current tier (idempotent)."""
    level = out.policy.tiers.level(a.tier)
    replay = bool(a.group_labels.get(REPLAY_LABEL))  # a replay of history pages no one
    if level.page and not replay and a.status is AlertStatus.FIRING and a.escalation_policy and a.escalation is None:
        a.escalation = EscalationProgress(policy=a.escalation_policy, next_at=now)
    elif not level.page and a.escalation is not None and a.escalation.running:
        a.escalation = None
        out.record(a, AlertEventType.ESCALATION_STOPPED, now, detail=f"tier {a.tier.value} does not page")
    if level.also_notify and a.tier not in a.also_notified:
        a.also_notified.append(a.tier)
        for receiver, user in resolve_targets(a, level.also_notify, now, out):
            out.notify(a, receiver, out.first_or(a, receiver, NotificationKind.UPDATE), now, user=user)


def escalate(a: AlertRecord, now: datetime, out: Emitter) -> None:
    """Page the due step of a firing alert's escalation, then schedule the next."""
    esc = a.escalation
    if esc is None or esc.stopped or esc.next_at is None or esc.next_at > now:
        return
    if a.status is not AlertStatus.FIRING:
        return
    policy = out.policy.escalation_policies.get(esc.policy)
    if policy is None or esc.step >= len(policy.steps):
        # The policy changed under a running escalation: stop rather than guess.
        esc.stop()
        out.record(a, AlertEventType.ESCALATION_STOPPED, now, detail=f"policy {esc.policy!r} changed")
        return
    step = policy.steps[esc.step]
    targets = resolve_targets(a, step.targets, now, out)
    for receiver, user in targets:
        out.notify(a, receiver, NotificationKind.PAGE, now, user=user, step=esc.step, round=esc.round)
    who = ",".join(sorted({u or r for r, u in targets}))
    out.record(a, AlertEventType.ESCALATED, now, step=esc.step, detail=f"round={esc.round} to={who}")
    esc.advance(policy, now)


def resolve_targets(
    a: AlertRecord, targets: Sequence[Target], now: datetime, out: Emitter
) -> list[tuple[str, str | None]]:
    """Targets -> unique ``(receiver, user)`` pairs; empty schedules go to the fallback."""
    policy, overrides = out.policy, out.state.overrides
    found: list[tuple[str, str | None]] = []
    for target in targets:
        user = target.user
        if target.schedule is not None:
            schedule = policy.schedules[target.schedule]
            user = schedule.on_call(now, tuple(overrides.get(target.schedule, ())))
            if user is None:
                detail = f"schedule {target.schedule!r} has nobody on call; sent to fallback"
                out.record(a, AlertEventType.UNROUTABLE, now, detail=detail)
                found.append((policy.fallback, None))
                continue
        if user is not None:
            found.extend((receiver, user) for receiver in policy.users[user].receivers)
        elif target.receiver is not None:
            found.append((target.receiver, None))
    unique: dict[str, str | None] = {}
    for receiver, user in found:
        unique.setdefault(receiver, user)
    return list(unique.items())
