"""The channel plugin interface: one method, ``send``, returning a :class:`Delivery`.

As Alertmanager's ``Notifier`` returns a "recoverable" flag, a channel says whether a
failure is worth retrying; all retry policy lives in ``alerting.delivery``. A channel
never raises for delivery failures, and never puts a secret in ``Delivery.error``.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from alerting.decisions import Language, Notification
from alerting.schedules import TimeZoneName
from config.durations import Duration


@dataclass(frozen=True)
class Delivery:
    """The outcome of one attempt."""

    ok: bool
    #: A later attempt may succeed (5xx, 429, timeouts, network errors, SMTP 4xx).
    retryable: bool = False
    #: HTTP status or SMTP reply code, when there was one.
    status: int | None = None
    #: What went wrong, safe to log (secrets redacted).
    error: str | None = None
    #: Seconds the receiver asked us to wait (``Retry-After``).
    retry_after: float | None = None


class Channel(Protocol):
    """A configured destination (one receiver)."""

    @property
    def name(self) -> str: ...

    async def send(self, notification: Notification) -> Delivery: ...


class MissingSecretError(KeyError):
    """A receiver refers to a secret that was not supplied."""

    def __str__(self) -> str:
        return str(self.args[0])


class ReceiverBase(BaseModel):
    """Settings every receiver has. Each channel type's config builds its channel
    (:meth:`channel`); ``alerting.channels.ReceiverConfig`` lists the types."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Language of the rendered text; ``None`` takes the policy's ``default_language``.
    language: Language | None = None
    #: Zone times are shown in.
    time_zone: TimeZoneName = "UTC"
    #: Per-request timeout.
    timeout: Duration = Field(default=timedelta(seconds=10))

    def secret_refs(self) -> tuple[str, ...]:
        """Names of the secrets this receiver needs."""
        return ()

    @abstractmethod
    def channel(self, name: str, secrets: dict[str, str], client: httpx.AsyncClient) -> Channel:
        """The channel of receiver ``name``; raises :class:`MissingSecretError` naming a missing secret."""


def require_secret(receiver: str, secrets: dict[str, str], ref: str) -> str:
    try:
        value = secrets[ref]
    except KeyError:
        raise MissingSecretError(f"receiver {receiver!r}: secret {ref!r} is not set") from None
    if len(value) < 4:
        raise MissingSecretError(f"receiver {receiver!r}: secret {ref!r} is too short")
    return value
