"""Generic webhook: POSTs the notification as JSON (optionally with a bearer token)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Literal

import httpx

from alerting.channels.base import Channel, Delivery, ReceiverBase, require_secret
from alerting.channels.http import post_json
from alerting.decisions import Notification
from alerting.redaction import Redactor, url_secret_parts

#: Version of the JSON body, so receivers can evolve with us.
PAYLOAD_VERSION = 1


class WebhookConfig(ReceiverBase):
    type: Literal["webhook"]
    #: Secret holding the URL (a webhook URL often embeds a token).
    url_secret: str
    #: Secret holding a bearer token sent as ``Authorization``.
    bearer_secret: str | None = None
    #: Secret that signs each body: ``X-OrderRadar-Signature: t=<unix>,v1=<hex HMAC-SHA256
    #: of "<unix>." + body>`` (a receiver checks it and rejects stale timestamps).
    signing_secret: str | None = None

    def secret_refs(self) -> tuple[str, ...]:
        refs = (self.url_secret, self.bearer_secret, self.signing_secret)
        return tuple(ref for ref in refs if ref)

    def channel(self, name: str, secrets: dict[str, str], client: httpx.AsyncClient) -> Channel:
        return WebhookChannel(name, self, secrets, client)


SIGNATURE_HEADER = "X-OrderRadar-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` value of :data:`SIGNATURE_HEADER` (hex HMAC-SHA256 over ``"<t>." + body``)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class WebhookChannel:
    def __init__(self, name: str, config: WebhookConfig, secrets: dict[str, str], client: httpx.AsyncClient) -> None:
        self._name = name
        self._url = require_secret(name, secrets, config.url_secret)
        self._token = require_secret(name, secrets, config.bearer_secret) if config.bearer_secret else None
        self._signing = require_secret(name, secrets, config.signing_secret) if config.signing_secret else None
        self._timeout = config.timeout.total_seconds()
        self._client = client
        self._redact = Redactor([*url_secret_parts(self._url), *(s for s in (self._token, self._signing) if s)])

    @property
    def name(self) -> str:
        return self._name

    async def send(self, notification: Notification) -> Delivery:
        headers = {"Idempotency-Key": notification.notification_id}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        payload = {"version": PAYLOAD_VERSION, **notification.to_dict()}
        delivery, _ = await post_json(
            self._client,
            self._url,
            payload,
            timeout=self._timeout,
            redact=self._redact,
            headers=headers,
            sign=self._sign if self._signing else None,
        )
        return delivery

    def _sign(self, body: bytes) -> Mapping[str, str]:
        assert self._signing is not None
        now = int(time.time())
        return {SIGNATURE_HEADER: f"t={now},v1={signature(self._signing, now, body)}"}
