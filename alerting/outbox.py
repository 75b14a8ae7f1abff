"""The outbox: notifications waiting to be delivered, with due times. Pure and serializable.

The worker adds the engine's notifications here and saves the outbox in the same Faust
table as the engine state, *before* sending. After a crash the outbox still holds what
was not confirmed, so nothing is lost, and at most the one in flight is sent twice.
Failed deliveries get a later due time (backoff, or the receiver's ``Retry-After``);
undeliverable ones are kept as abandoned, listed and recorded, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from alerting.backoff import RetryPolicy, backoff_delay
from alerting.channels.base import Delivery
from alerting.decisions import Notification

#: How long ids of delivered notifications are remembered, so a replayed decision
#: (engine restored from an older snapshot) is not sent again.
REMEMBER_SENT = timedelta(hours=24)


class OutboxItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notification: Notification
    queued_at: AwareDatetime
    due_at: AwareDatetime
    attempts: int = 0
    #: Delivery calls that failed (drives the between-calls backoff).
    failures: int = 0
    #: Times it was held back behind a failing item for the same receiver.
    deferrals: int = 0
    last_error: str | None = None
    last_status: int | None = None
    abandoned_at: AwareDatetime | None = None

    @property
    def notification_id(self) -> str:
        return self.notification.notification_id


class NotificationOutbox(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: dict[str, OutboxItem] = Field(default_factory=dict)
    #: Delivered notification id -> when (pruned after ``REMEMBER_SENT``).
    sent: dict[str, AwareDatetime] = Field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NotificationOutbox:
        return cls.model_validate(data) if data else cls()

    def add(self, notification: Notification, now: datetime) -> bool:
        """Queue for delivery now; ``False`` if it is queued or was delivered already."""
        key = notification.notification_id
        if key in self.items or key in self.sent:
            return False
        self.items[key] = OutboxItem(notification=notification, queued_at=now, due_at=now)
        return True

    def add_all(self, notifications: Iterable[Notification], now: datetime) -> int:
        return sum(self.add(n, now) for n in notifications)

    def due(self, now: datetime) -> list[OutboxItem]:
        """Items to try now, oldest first (so a receiver gets firing before resolved)."""
        ready = [i for i in self.items.values() if i.abandoned_at is None and i.due_at <= now]
        return sorted(ready, key=lambda i: (i.queued_at, i.notification_id))

    def next_due(self) -> datetime | None:
        times = [i.due_at for i in self.items.values() if i.abandoned_at is None]
        return min(times) if times else None

    def abandoned(self) -> list[OutboxItem]:
        return [i for i in self.items.values() if i.abandoned_at is not None]

    def pending(self) -> list[OutboxItem]:
        return [i for i in self.items.values() if i.abandoned_at is None]

    def mark_delivered(self, notification_id: str, now: datetime) -> None:
        self.items.pop(notification_id, None)
        self.sent[notification_id] = now
        horizon = now - REMEMBER_SENT
        for old in [k for k, at in self.sent.items() if at <= horizon]:
            del self.sent[old]

    def mark_failed(
        self, notification_id: str, delivery: Delivery, attempts: int, now: datetime, policy: RetryPolicy
    ) -> datetime | None:
        """Record a failed delivery call; return the next due time, or ``None`` if abandoned."""
        item = self.items[notification_id]
        item.attempts += attempts
        item.failures += 1
        item.last_error = delivery.error
        item.last_status = delivery.status
        out_of_time = now - item.queued_at >= timedelta(seconds=policy.give_up_after)
        if not delivery.retryable or out_of_time:
            item.abandoned_at = now
            return None
        if delivery.retry_after is not None:
            delay = min(delivery.retry_after, policy.max_retry_after)
        else:
            delay = backoff_delay(
                notification_id,
                item.failures,
                base=policy.later_base_delay,
                multiplier=policy.multiplier,
                cap=policy.later_max_delay,
                jitter=policy.jitter,
            )
        item.due_at = now + timedelta(seconds=delay)
        return item.due_at

    def defer(self, notification_id: str, until: datetime) -> None:
        """Hold an item until ``until`` without counting an attempt."""
        item = self.items[notification_id]
        item.due_at = max(item.due_at, until)
        item.deferrals += 1

    def requeue(self, notification_id: str, now: datetime) -> None:
        """Put an abandoned item back (after an operator fixed the receiver)."""
        item = self.items[notification_id]
        item.abandoned_at = None
        item.due_at = now
        item.queued_at = now

    def dismiss(self, notification_id: str) -> OutboxItem:
        """Remove an item for good (an operator's decision; record it)."""
        return self.items.pop(notification_id)
