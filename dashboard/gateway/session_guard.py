"""What staff sessions need beyond the signed cookie: revocation shared by every instance,
and the per-account login throttle.

A session cookie names a random session id. Signing out publishes a ``session_revoke``
record (the SHA-256 of the id, never the id, and when the session would have expired
anyway) on ``orderradar-control``, the topic every web instance already reads; each
instance's :class:`SessionGuard` reads it back and refuses that id from then on. The topic
is shared through the broker, so this works for any number of instances behind a load
balancer without a new store, and a restarted instance reads the recent revocations back
(the control topic's lookback) before ``/readyz`` calls it ready. Password, role and
``session_epoch`` changes end sessions through the staff file instead
(:attr:`dashboard.gateway.staff.StaffMember.fingerprint`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

import orjson
from aiokafka import ConsumerRecord
from pydantic import AwareDatetime, StringConstraints

from config.client_auth import kafka_auth
from dashboard.gateway.background import cancel_all
from dashboard.gateway.metrics import GatewayMetrics
from dashboard.gateway.rate_limit import KeyedRateLimiter
from dashboard.gateway.update_consumer import StartAt, TopicReader
from stream.core.control_commands import Command
from stream.topics import CONTROL

if TYPE_CHECKING:
    from dashboard.gateway.runtime import Gateway

log = logging.getLogger(__name__)

#: Name of the guard in the ASGI lifespan state (``request.state.sessions``).
STATE_KEY = "sessions"


def session_digest(session_id: str) -> str:
    """What revocation records carry instead of the session id itself."""
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionRevoke(Command):
    """A signed-out session: no instance accepts it again (until it would have expired)."""

    type: Literal["session_revoke"] = "session_revoke"
    session: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    until: AwareDatetime


class SessionRevocations:
    """Revoked session digests, each kept until its session would have expired. Pure."""

    def __init__(self) -> None:
        self._until: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._until)

    def revoke(self, digest: str, until: datetime) -> None:
        known = self._until.get(digest)
        self._until[digest] = until if known is None else max(known, until)

    def revoked(self, digest: str) -> bool:
        return digest in self._until

    def prune(self, now: datetime) -> None:
        for digest in [d for d, until in self._until.items() if until <= now]:
            del self._until[digest]


class SessionGuard:
    """One instance's session revocations (read from the control topic) and account throttle."""

    def __init__(self, gateway: Gateway) -> None:
        options, settings = gateway.options, gateway.settings
        self.gateway = gateway
        self.revocations = SessionRevocations()
        self.account_limiter = KeyedRateLimiter(options.login_account_rate_per_s, options.login_account_burst)
        control = settings.topic(CONTROL)
        # The gateway's own reader also reads the control topic; this one only picks out
        # revocations, and keeps its own counters so the exported record counts stay true.
        self.reader = TopicReader(
            "sessions",
            settings.kafka_bootstrap,
            [control],
            self._on_record,
            GatewayMetrics(),
            start=StartAt.RECENT,
            lookback=options.lookback_by_topic.get(CONTROL, options.lookback_per_partition),
            fetch_max_wait_ms=options.fetch_max_wait_ms,
            security=kafka_auth(settings),
        )
        self._tasks: list[asyncio.Task[None]] = []

    def not_ready(self) -> str | None:
        """Why revocations cannot be trusted yet (``None``: they can), for ``/readyz``."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                return f"session revocations: {task.get_name()} stopped: {task.exception()!r}"
        if not self.reader.caught_up:
            return f"session revocations: {self.reader.last_error or 'still reading the control topic'}"
        return None

    def _on_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.value is None or b'"session_revoke"' not in record.value:
            return
        revoke = SessionRevoke.model_validate(orjson.loads(record.value))
        self.revocations.revoke(revoke.session, revoke.until)

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.reader.run(), name="gateway-sessions"),
            asyncio.create_task(self._prune_forever(), name="gateway-sessions-prune"),
        ]

    async def stop(self) -> None:
        await cancel_all(self._tasks)

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(60)
            self.revocations.prune(self.gateway.clock())
