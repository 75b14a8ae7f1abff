"""What the engine decides: notifications to send and alert history records.

The worker acts on exactly two decision types:

* :class:`Notification`: hand it to the delivery stage (``NotificationOutbox.add`` then
  ``DeliveryStage.deliver_due``). ``notification_id`` is deterministic; use it as the
  idempotency key.
* :class:`AlertEvent`: publish ``to_dict()`` to the ``alerts`` topic (key ``alert_id``)
  and write its point to InfluxDB (times from one :class:`HistoryTimes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from alerting.tier import Tier

Language = Literal["en", "zh-CN"]

#: InfluxDB measurement for alert history.
MEASUREMENT = "alert_events"

#: Labels copied into history tags: all of low cardinality (never ids).
TAG_LABELS = ("kind", "region", "warehouse", "carrier", "channel")


class NotificationKind(StrEnum):
    FIRING = "firing"  # first notice to a receiver
    UPDATE = "update"  # the alert changed (tier, members, states)
    REPEAT = "repeat"  # still firing, not acknowledged, after repeat_interval
    PAGE = "page"  # an escalation step paging on-call people or channels
    ACKED = "acked"  # someone took it
    RESOLVED = "resolved"  # the one resolved notice


class Notification(BaseModel):
    """One message to one receiver, already rendered in the receiver's language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    notification_id: str
    alert_id: str
    kind: NotificationKind
    receiver: str
    language: Language
    tier: Tier
    title: str
    text: str
    labels: dict[str, str]
    incident_ids: tuple[str, ...]
    created_at: AwareDatetime
    #: The escalation step and pass for ``page`` notifications.
    step: int | None = None
    round: int | None = None
    #: The on-call user this notice is for, when it targets a person.
    user: str | None = None
    ack_url: str | None = None
    resolve_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notification:
        return cls.model_validate(data)


class AlertEventType(StrEnum):
    FIRED = "fired"  # an alert exists (every tier, P4 included: the dashboard shows it)
    TIER_CHANGED = "tier_changed"
    NOTIFIED = "notified"  # the engine queued a notification (receiver set)
    ESCALATED = "escalated"  # an escalation step fired (step 0 is the first page)
    ESCALATION_STOPPED = "escalation_stopped"  # tier fell below paging
    UNROUTABLE = "unroutable"  # a target resolved to nobody; the fallback was used
    ACKED = "acked"
    RESOLVED = "resolved"
    INHIBITED = "inhibited"
    SILENCED = "silenced"
    UNMUTED = "unmuted"
    SILENCE_CREATED = "silence_created"
    SILENCE_EXPIRED = "silence_expired"
    # Written by the delivery stage, not the engine:
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"  # will be retried (due time in detail)
    DELIVERY_ABANDONED = "delivery_abandoned"  # not retryable or out of time; kept in the outbox


class AlertEvent(BaseModel):
    """One alert history record (``alerts`` topic, InfluxDB ``alert_events``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record_id: str
    #: Empty for silence records, which carry ``silence_id`` instead.
    alert_id: str
    event: AlertEventType
    at: AwareDatetime
    tier: Tier | None = None
    incident_ids: tuple[str, ...] = ()
    labels: dict[str, str] = {}
    by: str | None = None
    receiver: str | None = None
    step: int | None = None
    notification_id: str | None = None
    silence_id: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def time_ns(self) -> int:
        """``at`` in ns (microsecond precision)."""
        at = self.at.astimezone(UTC)
        delta = at - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


class HistoryTimes:
    """Point times of the ``alert_events`` one agent writes: strictly increasing.

    Point identity is measurement + tags + time. Records of one engine call share ``at``
    (the call's ``now``) and often their tags (two alerts of one kind fired by one tick),
    and two calls may share ``now`` too, so ``at`` alone would merge them. Each point is
    at ``at``, or 1 ns after the agent's previous point if that is later: no two points of
    one agent share a time, whatever their tags. The shift is N ns for N records decided
    at one instant (and the size of any backward step of ``now``). A new owner of the
    engine starts after the old one's session expired (seconds of wall clock later).
    Retries resend the lines as built, so they rewrite the same points.
    """

    def __init__(self) -> None:
        self._last_ns: int | None = None

    def times(self, records: Sequence[AlertEvent]) -> list[int]:
        """The point time of each record, in order."""
        out = []
        for record in records:
            time_ns = record.time_ns
            if self._last_ns is not None and time_ns <= self._last_ns:
                time_ns = self._last_ns + 1
            self._last_ns = time_ns
            out.append(time_ns)
        return out


Decision = Notification | AlertEvent
