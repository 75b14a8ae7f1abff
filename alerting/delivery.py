"""The delivery stage: send notifications through channels with timeouts and retries.

One delivery call makes up to ``RetryPolicy.attempts`` attempts, sleeping an
exponential, jittered backoff between them (or the receiver's ``Retry-After``, capped).
Only retryable failures are retried (network errors, timeouts, 429, 5xx, SMTP 4xx); a
plain 4xx is final. What still fails stays in the :class:`~alerting.outbox.NotificationOutbox` with a
later due time, or is abandoned there and recorded: never dropped silently.

The sleep function is injected, so tests run retry timelines without waiting. Errors
in logs and records pass through a :class:`~alerting.redaction.Redactor` of every
configured secret, on top of each channel's own redaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime

from alerting.backoff import RetryPolicy, backoff_delay
from alerting.channels.base import Channel, Delivery
from alerting.decisions import TAG_LABELS, AlertEvent, AlertEventType, Notification
from alerting.outbox import NotificationOutbox, OutboxItem
from alerting.redaction import Redactor

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class DeliveryStage:
    def __init__(
        self,
        channels: Mapping[str, Channel],
        policy: RetryPolicy | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        secrets: Iterable[str] = (),
    ) -> None:
        self._channels = dict(channels)
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._redact = Redactor(secrets)

    async def send(self, notification: Notification) -> tuple[Delivery, int]:
        """Deliver with immediate retries; return the last outcome and attempts made."""
        channel = self._channels.get(notification.receiver)
        if channel is None:
            error = f"no channel configured for receiver {notification.receiver!r}"
            return Delivery(ok=False, retryable=False, error=error), 0
        policy = self.policy
        attempt = 0
        while True:
            attempt += 1
            delivery = await self._attempt(channel, notification)
            if delivery.ok:
                return delivery, attempt
            if not delivery.retryable or attempt >= policy.attempts:
                return self._safe(delivery), attempt
            if delivery.retry_after is not None:
                delay = min(delivery.retry_after, policy.max_retry_after)
            else:
                delay = backoff_delay(
                    notification.notification_id,
                    attempt,
                    base=policy.base_delay,
                    multiplier=policy.multiplier,
                    cap=policy.max_delay,
                    jitter=policy.jitter,
                )
            logger.warning(
                "delivery attempt failed receiver=%s notification_id=%s attempt=%d/%d status=%s "
                "error=%s retry_in=%.3fs",
                notification.receiver,
                notification.notification_id,
                attempt,
                policy.attempts,
                delivery.status,
                self._redact(delivery.error or ""),
                delay,
            )
            await self._sleep(delay)

    async def _attempt(self, channel: Channel, notification: Notification) -> Delivery:
        timeout = self.policy.attempt_timeout
        try:
            return await asyncio.wait_for(channel.send(notification), timeout=timeout)
        except TimeoutError:
            return Delivery(ok=False, retryable=True, error=f"timeout after {timeout:g}s (attempt limit)")

    def _safe(self, delivery: Delivery) -> Delivery:
        if delivery.error is None:
            return delivery
        return Delivery(
            ok=delivery.ok,
            retryable=delivery.retryable,
            status=delivery.status,
            error=self._redact(delivery.error),
            retry_after=delivery.retry_after,
        )

    async def deliver_due(self, outbox: NotificationOutbox, now: datetime) -> list[AlertEvent]:
        """Send every due item; update the outbox; return delivery history records.

        Receivers are served concurrently, each one's items in queue order (a receiver
        never sees "resolved" before "firing").
        """
        by_receiver: dict[str, list[OutboxItem]] = defaultdict(list)
        for item in outbox.due(now):
            by_receiver[item.notification.receiver].append(item)

        async def serve(items: list[OutboxItem]) -> list[AlertEvent]:
            records = []
            for index, item in enumerate(items):
                delivery, attempts = await self.send(item.notification)
                records.append(self._settle(outbox, item, delivery, attempts, now))
                if not delivery.ok and delivery.retryable:
                    # The receiver is down: keep its later items behind this one (order is
                    # kept, and a dead receiver is not hammered once per queued item).
                    until = outbox.items[item.notification_id].due_at
                    for later in items[index + 1 :]:
                        outbox.defer(later.notification_id, until)
                        records.append(self._deferred(later, until, now))
                    break
            return records

        batches = await asyncio.gather(*(serve(items) for items in by_receiver.values()))
        return [record for batch in batches for record in batch]

    def _deferred(self, item: OutboxItem, until: datetime, now: datetime) -> AlertEvent:
        return self._record(
            item,
            AlertEventType.DELIVERY_FAILED,
            now,
            f"attempts={item.attempts} deferred behind a failing delivery to the same receiver "
            f"next_due={until.isoformat()}",
            f"w{item.deferrals}",
        )

    def _settle(
        self, outbox: NotificationOutbox, item: OutboxItem, delivery: Delivery, attempts: int, now: datetime
    ) -> AlertEvent:
        n = item.notification
        total = item.attempts + attempts
        if delivery.ok:
            outbox.mark_delivered(n.notification_id, now)
            event, detail = AlertEventType.DELIVERED, f"attempts={total}"
        else:
            next_due = outbox.mark_failed(n.notification_id, delivery, attempts, now, self.policy)
            error = self._redact(delivery.error or "")
            if next_due is None:
                event, detail = AlertEventType.DELIVERY_ABANDONED, f"attempts={total} error={error}"
                logger.error(
                    "delivery abandoned receiver=%s notification_id=%s attempts=%d error=%s",
                    n.receiver,
                    n.notification_id,
                    total,
                    error,
                )
            else:
                event = AlertEventType.DELIVERY_FAILED
                detail = f"attempts={total} error={error} next_due={next_due.isoformat()}"
                logger.warning(
                    "delivery failed, will retry receiver=%s notification_id=%s attempts=%d error=%s next_due=%s",
                    n.receiver,
                    n.notification_id,
                    total,
                    error,
                    next_due.isoformat(),
                )
        return self._record(item, event, now, detail, f"d{total}")

    def _record(self, item: OutboxItem, event: AlertEventType, now: datetime, detail: str, suffix: str) -> AlertEvent:
        n = item.notification
        return AlertEvent(
            record_id=f"{n.notification_id}/{suffix}",
            alert_id=n.alert_id,
            event=event,
            at=now,
            tier=n.tier,
            incident_ids=n.incident_ids,
            labels={k: v for k, v in n.labels.items() if k in TAG_LABELS},
            by=n.user,
            receiver=n.receiver,
            step=n.step,
            notification_id=n.notification_id,
            detail=detail,
        )
