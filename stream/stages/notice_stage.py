"""Notice stage: tells a customer once per order and cause that the order is at risk or late.

It runs after the delays stage, which keeps each order's ``eta`` extension
(:mod:`stream.core.order_eta`, with its delay ``state``). When an order's state becomes
``at_risk`` or ``late`` and that cause is not yet in the order's ``notices`` extension,
the notices of :mod:`stream.sinks.customer_notices` (one per configured receiver) are queued in
the partition's alerting outbox (:class:`alerting.outbox.NotificationOutbox`) and the cause is written
into ``extensions.notices`` in the same batch. Both are changelogged (the order in the
order table, the outbox as stage state ``outbox/<partition>``), so after a restart or a
re-read of the same records the order is never noticed twice; the outbox also remembers
delivered notification ids.

Delivery runs in a background task with the alerting :class:`~alerting.delivery.DeliveryStage`
(attempts with backoff, later retries from the outbox, abandonment after a day), so a slow
receiver never holds up the pipeline; the next batch or tick saves the outbox and writes
the ``customer_notices`` points (``event`` = queued, delivered, delivery_failed,
delivery_abandoned). A crash after sending and before that save sends the notice once
more (receivers deduplicate on ``Idempotency-Key`` = the notification id).

Fencing: a notice is sent only once the batch that queued it was written: the next batch
or tick starts delivery, and only of notifications in the partition's outbox as the
pipeline stored it (it stores a batch's stage state only after the changelog took it, and
a dropped batch's partitions are read again). So a batch that is dropped later (a zombie's,
fenced by the membership lease) notifies nobody. Right before each partition's delivery the
pipeline outbox's fence (``ctx.fence``) and the partition's ownership are checked again: a
worker frozen past its session, or between a revocation and the next assignment, sends
nothing. Left: a freeze in the middle of one partition's delivery sends its remaining
(written, so legitimate) notices late, which the successor also sends with the same
``Idempotency-Key``.

Orders of a replay (:mod:`stream.core.replay`) never notify anybody.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from alerting.decisions import AlertEvent, Language
from alerting.delivery import DeliveryStage
from alerting.outbox import NotificationOutbox
from stream.core.order_eta import ETA_EXTENSION, NOTICE_STATES
from stream.core.replay import timeline_of_order
from stream.sinks.customer_notices import MEASUREMENT, notices
from stream.sinks.line_protocol import line, point_time_ns
from stream.sinks.outbox import OutboxFenced
from stream.stage_api import BatchContext

log = logging.getLogger(__name__)

#: Order extension: cause -> when the customer was noticed (ISO).
NOTICES_EXTENSION = "notices"
_OUTBOX = "outbox/"


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000) * 1000


class NoticeStage:
    """See the module doc."""

    name = "notices"

    def __init__(self, delivery: DeliveryStage, receivers: list[str], language: Language) -> None:
        self.delivery = delivery
        self.receivers = sorted(receivers)
        self.language = language
        self.outboxes: dict[int, NotificationOutbox] = {}
        self._dirty: set[int] = set()
        self._lines: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._rank = 0

    async def restore(self, entries: Mapping[str, Any], partitions: set[int]) -> None:
        self.outboxes = {}
        for name, value in entries.items():
            if name.startswith(_OUTBOX) and value:
                partition = int(name[len(_OUTBOX) :])
                if partition in partitions:
                    self.outboxes[partition] = NotificationOutbox.from_dict(value)

    async def process(self, ctx: BatchContext) -> None:
        if self.receivers:
            for order in list(ctx.orders.values()):
                self._decide(ctx, order)
        self._kick(ctx)  # before _flush: ctx.stage_get still answers with the stored outboxes
        self._flush(ctx)

    async def tick(self, ctx: BatchContext) -> None:
        self._kick(ctx)
        self._flush(ctx)

    def _decide(self, ctx: BatchContext, order: Any) -> None:
        eta = order.extensions.get(ETA_EXTENSION)
        cause = eta.get("state") if isinstance(eta, dict) else None
        if cause not in NOTICE_STATES:
            return
        sent = dict(order.extensions.get(NOTICES_EXTENSION) or {})
        if cause in sent or timeline_of_order(dict(order.extensions)) is not None:
            return
        now = ctx.now
        outbox = self.outboxes.setdefault(order.partition, NotificationOutbox())
        for notification in notices(order.order_id, cause, eta, self.receivers, self.language, now):
            if outbox.add(notification, now):
                self._line(
                    notification.receiver, cause, "queued", order.order_id, notification.notification_id, "", now
                )
        self._dirty.add(order.partition)
        sent[cause] = now.isoformat()
        ctx.update_order(order.with_extension(NOTICES_EXTENSION, sent))

    def _line(
        self,
        receiver: str | None,
        cause: str | None,
        event: str,
        order_id: str | None,
        notification_id: str | None,
        detail: str,
        at: datetime,
    ) -> None:
        self._rank += 1
        self._lines.append(
            line(
                MEASUREMENT,
                {"receiver": receiver, "cause": cause, "event": event},
                {"order_id": order_id, "notification_id": notification_id, "detail": detail},
                point_time_ns(_ns(at), self._rank),
            )
        )

    def _flush(self, ctx: BatchContext) -> None:
        ctx.lines.extend(self._lines)
        self._lines = []
        for partition in sorted(self._dirty):
            outbox = self.outboxes.get(partition)
            if outbox is not None:
                ctx.stage_put(self.name, f"{_OUTBOX}{partition}", outbox.to_dict(), partition)
        self._dirty.clear()

    async def drain(self) -> None:
        """Wait for the delivery in flight, if any (its records go out with the next flush)."""
        if self._task is not None:
            await asyncio.wait([self._task])

    def _written(self, ctx: BatchContext, partition: int) -> set[str]:
        """Ids queued in the partition's outbox as the pipeline stored it (written batches only)."""
        stored = ctx.stage_get(self.name, f"{_OUTBOX}{partition}")
        return set(stored.get("items") or ()) if isinstance(stored, dict) else set()

    def _kick(self, ctx: BatchContext) -> None:
        if self._task is not None and not self._task.done():
            return
        now = ctx.now
        due: dict[int, set[str]] = {}
        for partition, outbox in self.outboxes.items():
            if not ctx.owned(partition):
                continue  # revoked, not yet reassigned: its new owner sends
            written = self._written(ctx, partition)
            if any(item.notification_id in written for item in outbox.due(now)):
                due[partition] = written
        if due:
            self._task = asyncio.create_task(self._deliver(due, now, ctx.fence, ctx.owned), name="customer-notices")

    async def _deliver(
        self, due: dict[int, set[str]], now: datetime, fence: Callable[[], None], owned: Callable[[int], bool]
    ) -> None:
        for partition, written in due.items():
            outbox = self.outboxes.get(partition)
            if outbox is None:
                continue
            try:
                fence()
            except OutboxFenced as exc:
                log.warning("customer notices not sent: %s", exc)
                return
            if not owned(partition):
                continue
            # Only the written items; they are the outbox's own objects, so the delivery's
            # updates (attempts, due times) land in it, and delivered ones leave it below.
            view = NotificationOutbox.model_construct(
                items={k: item for k, item in outbox.items.items() if k in written}, sent=outbox.sent
            )
            tried = set(view.items)
            try:
                records = await self.delivery.deliver_due(view, now)
            except Exception:  # a bug in one delivery must not stop the next ones
                log.exception("customer notice delivery failed for partition %s", partition)
                continue
            for key in tried - set(view.items):
                outbox.items.pop(key, None)
            self._dirty.add(partition)
            for record in records:
                self._record(record)

    def _record(self, record: AlertEvent) -> None:
        labels = record.labels
        head, cause, _ = (record.notification_id or "notice///").rsplit("/", 2)
        order_id = head.removeprefix("notice/")
        self._line(
            record.receiver,
            cause or labels.get("cause"),
            record.event.value,
            order_id or None,
            record.notification_id,
            record.detail or "",
            datetime.now(UTC),
        )


__all__ = ["NOTICES_EXTENSION", "NoticeStage"]
