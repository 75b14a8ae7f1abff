"""Alerts and silences as the war-room and ``GET /api/v1/alerts`` show them. Pure.

Folds the alert history records of the ``alerts`` topic (``alerting.decisions.AlertEvent``
as dicts) into one summary per alert (channel ``alert``) and one per silence (channel
``silence``). Unknown event types only touch ``last_event``, so the alerting engine can add
types freely.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: Record ``event`` -> the alert's status afterwards.
_STATUS_AFTER = {
    "fired": "firing",
    "escalated": "firing",
    "acked": "acked",
    "resolved": "resolved",
    "silenced": "silenced",
    "inhibited": "inhibited",
    "unmuted": "firing",
}
_SILENCE_EVENTS = ("silence_created", "silence_expired")

#: Looks up the current item of a channel by key (``None`` when unknown).
Lookup = Callable[[str, str], Any]


def fold_alert_record(record: Mapping[str, Any], current: Lookup) -> tuple[str, str, dict[str, Any]]:
    """The ``(channel, key, item)`` after one ``alerts`` record; raises ``ValueError`` if unusable."""
    event = record.get("event")
    if not isinstance(event, str):
        raise ValueError("alert record has no 'event'")
    silence_id = record.get("silence_id")
    if event in _SILENCE_EVENTS and isinstance(silence_id, str) and silence_id:
        return "silence", silence_id, _silence(current("silence", silence_id), silence_id, event, record)
    alert_id = record.get("alert_id")
    if not isinstance(alert_id, str) or not alert_id:
        raise ValueError("alert record has no 'alert_id'")
    return "alert", alert_id, _alert(current("alert", alert_id), alert_id, event, record)


def _alert(previous: Any, alert_id: str, event: str, record: Mapping[str, Any]) -> dict[str, Any]:
    at = record.get("at")
    item = dict(previous) if isinstance(previous, dict) else {"alert_id": alert_id, "status": "firing", "first_at": at}
    item["status"] = _STATUS_AFTER.get(event, item["status"])
    item["last_event"] = event
    item["updated_at"] = at
    for name in ("tier", "labels", "incident_ids"):
        if record.get(name):
            item[name] = record[name]
    if event == "acked":
        item["acked_by"], item["acked_at"] = record.get("by"), at
    elif event == "resolved":
        item["resolved_by"], item["resolved_at"] = record.get("by"), at
    elif event == "escalated" and record.get("step") is not None:
        item["escalation_step"] = record["step"]
    return item


def _silence(previous: Any, silence_id: str, event: str, record: Mapping[str, Any]) -> dict[str, Any]:
    item = dict(previous) if isinstance(previous, dict) else {"silence_id": silence_id}
    if event == "silence_created":
        item.update(
            active=True, created_by=record.get("by"), created_at=record.get("at"), detail=record.get("detail", "")
        )
    else:
        item.update(active=False, expired_by=record.get("by"), expired_at=record.get("at"))
    return item
