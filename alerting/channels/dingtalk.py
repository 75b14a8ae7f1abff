"""DingTalk custom robot (钉钉自定义机器人), markdown message, optional 加签 signing.

With a signing secret, each request carries ``timestamp`` (ms) and
``sign = urlencode(base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")))`` in the
query. DingTalk answers HTTP 200 with ``errcode``; 0 is success, 130101 ("sending too
fast") and -1 ("system busy") are worth retrying, anything else is not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Literal
from urllib.parse import quote_plus

import httpx

from alerting.channels.base import Channel, Delivery, ReceiverBase, require_secret
from alerting.channels.http import post_json, robot_errcode
from alerting.decisions import Notification
from alerting.redaction import Redactor, url_secret_parts

RETRYABLE_ERRCODES = frozenset({-1, 130101})


class DingTalkConfig(ReceiverBase):
    type: Literal["dingtalk"]
    #: Secret holding the robot URL (``.../robot/send?access_token=...``).
    url_secret: str
    #: Secret holding the robot's signing secret (``SEC...``), when 加签 is on.
    sign_secret: str | None = None
    #: Phone numbers to @-mention (the robot's way to ping people).
    at_mobiles: tuple[str, ...] = ()

    def secret_refs(self) -> tuple[str, ...]:
        return (self.url_secret,) + ((self.sign_secret,) if self.sign_secret else ())

    def channel(self, name: str, secrets: dict[str, str], client: httpx.AsyncClient) -> Channel:
        return DingTalkChannel(name, self, secrets, client)


def sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` query value for ``timestamp_ms`` (already URL-encoded)."""
    message = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


class DingTalkChannel:
    def __init__(
        self,
        name: str,
        config: DingTalkConfig,
        secrets: dict[str, str],
        client: httpx.AsyncClient,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._name = name
        self._url = require_secret(name, secrets, config.url_secret)
        self._secret = require_secret(name, secrets, config.sign_secret) if config.sign_secret else None
        self._at_mobiles = list(config.at_mobiles)
        self._timeout = config.timeout.total_seconds()
        self._client = client
        self._clock_ms = clock_ms
        self._redact = Redactor([*url_secret_parts(self._url), *([self._secret] if self._secret else [])])

    @property
    def name(self) -> str:
        return self._name

    def signed_url(self) -> str:
        if self._secret is None:
            return self._url
        timestamp = self._clock_ms()
        joiner = "&" if "?" in self._url else "?"
        return f"{self._url}{joiner}timestamp={timestamp}&sign={sign(self._secret, timestamp)}"

    async def send(self, notification: Notification) -> Delivery:
        payload = {
            "msgtype": "markdown",
            "markdown": {"title": notification.title, "text": f"### {notification.title}\n\n{notification.text}"},
            "at": {"atMobiles": self._at_mobiles, "isAtAll": False},
        }
        # The signed URL starts with the secret robot URL, so redacting that hides both.
        delivery, response = await post_json(
            self._client, self.signed_url(), payload, timeout=self._timeout, redact=self._redact
        )
        if not delivery.ok or response is None:
            return delivery
        return robot_errcode(response, delivery, RETRYABLE_ERRCODES, self._redact)
