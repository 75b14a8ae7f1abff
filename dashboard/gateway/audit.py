"""The audit trail: who did what, logged and published on ``orderradar-control``.

Every staff or API-key action (login, ack, resolve, silence, disruption, tracking link)
writes one ``audit`` record. Publishing is best effort: a record that cannot reach the
broker is still in the log (logger ``orderradar.audit``) and counted in the metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from dashboard.gateway.metrics import GatewayMetrics
from dashboard.gateway.publisher import BusPublisher, PublishError
from stream.core.control_commands import AuditRecord
from stream.topics import CONTROL

log = logging.getLogger("orderradar.audit")

Outcome = Literal["ok", "denied", "failed"]


class AuditTrail:
    def __init__(self, publisher: BusPublisher, metrics: GatewayMetrics, clock: Callable[[], datetime]) -> None:
        self.publisher = publisher
        self.metrics = metrics
        self.clock = clock

    async def record(
        self, actor: str, action: str, subject: str = "", outcome: Outcome = "ok", **details: Any
    ) -> AuditRecord:
        entry = AuditRecord(
            actor=actor, at=self.clock(), action=action, subject=subject, outcome=outcome, details=details
        )
        log.info(
            "audit actor=%s action=%s subject=%s outcome=%s details=%s",
            actor,
            action,
            subject,
            outcome,
            details or "{}",
        )
        self.metrics.staff_actions.inc(action=action, outcome=outcome)
        try:
            await self.publisher.publish_json(CONTROL, entry.target, entry.to_record())
        except PublishError as exc:
            log.warning("audit record not published action=%s actor=%s: %s", action, actor, exc)
        return entry
