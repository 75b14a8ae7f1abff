"""A small, fully known policy for the engine timeline tests (log receivers only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerting.decisions import AlertEvent, AlertEventType, Decision, Notification
from alerting.incident import IncidentEvent, IncidentState
from alerting.policy import AlertPolicy, load_policy

POLICY_YAML = """
default_language: en
fallback_receiver: ops-chat
tiers:
  downgrade_after: 10m
  levels:
    P1: {when: [{min_affected_orders: 1000}], page: true, also_notify: [{user: manager}]}
    P2: {when: [{min_affected_orders: 100}, {min_vip_orders: 5}], page: true}
    P3: {when: [{min_affected_orders: 10}, {min_affected_orders: 1, max_minutes_to_promise: 30}]}
    P4: {notify: false}
route:
  receiver: ops-chat
  escalation: ops
  group_by: [incident_id]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  routes:
    - matchers: ['kind="order_late"']
      receiver: cs-chat
      escalation: null
      group_by: [node]
inhibit_rules:
  - source_matchers: ['kind="region_disruption"']
    target_matchers: ['kind=~"hub_stall|carrier_slowdown"']
    equal: [region]
  - source_matchers: ['kind="hub_stall"']
    target_matchers: ['kind="order_late"']
    equal: [node]
receivers:
  ops-chat: {type: log}
  cs-chat: {type: log, language: zh-CN, time_zone: Asia/Shanghai}
  alice-pager: {type: log}
  bob-pager: {type: log}
  manager-mail: {type: log}
users:
  alice: {receivers: [alice-pager]}
  bob: {receivers: [bob-pager]}
  manager: {receivers: [manager-mail]}
schedules:
  primary: {rotations: [{participants: [alice], start: 2025-01-01}]}
  secondary: {rotations: [{participants: [bob], start: 2025-01-01}]}
escalation_policies:
  ops:
    repeat: 1
    steps:
      - {targets: [{schedule: primary}], escalate_after: 10m}
      - {targets: [{schedule: secondary}], escalate_after: 15m}
"""


def write_policy(directory: Path, text: str = POLICY_YAML) -> Path:
    path = directory / "alerting.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def make_policy(directory: Path) -> AlertPolicy:
    return load_policy(write_policy(directory))


class Clock:
    """The injected clock of a timeline test."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def at(self, **delta: float) -> datetime:
        """Absolute offset from the timeline start."""
        self.now = T0 + timedelta(**delta)
        return self.now


T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def incident(
    incident_id: str,
    *,
    kind: str = "hub_stall",
    state: str = "open",
    orders: int = 150,
    updated_at: datetime = T0,
    first_seen: datetime = T0,
    labels: dict[str, str] | None = None,
    vip: int = 0,
    minutes_to_promise: float | None = None,
    title: str | None = None,
) -> IncidentEvent:
    return IncidentEvent(
        incident_id=incident_id,
        kind=kind,
        state=IncidentState(state),
        labels=labels if labels is not None else {"region": "east", "node": "HUB-SH-01", "warehouse": "WH-SH"},
        affected_orders=orders,
        affected_skus=orders * 2,
        order_value=orders * 120.0,
        vip_orders=vip,
        min_minutes_to_promise=minutes_to_promise,
        first_seen=first_seen,
        updated_at=updated_at,
        title=title or f"{kind} {incident_id}",
    )


def delay_record(
    incident_id: str,
    root_cause: dict[str, str],
    *,
    orders: int,
    skus: int | None = None,
    at: datetime = T0,
    dimension: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An ``order-incidents`` record of a delay incident (``stream.core.incident_detector``), as the
    delays stage forwards it to ``alert-inputs``; ``dimension`` defaults to the root cause's keys."""
    return {
        "incident_id": incident_id,
        "kind": "delay",
        "state": "open",
        "dimension": dimension or "_".join(root_cause),
        "root_cause": root_cause,
        "counts": {"orders": orders, "skus": orders if skus is None else skus},
        "first_seen": at.isoformat(),
        "at": at.isoformat(),
        **fields,
    }


def notifications(decisions: Sequence[Decision]) -> list[Notification]:
    return [d for d in decisions if isinstance(d, Notification)]


def records(decisions: Sequence[Decision], event: AlertEventType | None = None) -> list[AlertEvent]:
    return [d for d in decisions if isinstance(d, AlertEvent) and (event is None or d.event is event)]


def sent(decisions: Sequence[Decision]) -> list[tuple[str, str]]:
    """``(kind, receiver)`` of each notification, in order."""
    return [(n.kind.value, n.receiver) for n in notifications(decisions)]
