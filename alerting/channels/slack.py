"""Slack-compatible incoming webhook (also Mattermost, Rocket.Chat): ``{"text": ...}``."""

from __future__ import annotations

from typing import Literal

import httpx

from alerting.channels.base import Delivery, ReceiverBase, require_secret
from alerting.channels.http import post_json
from alerting.decisions import Notification
from alerting.redaction import Redactor, url_secret_parts


class SlackConfig(ReceiverBase):
    type: Literal["slack"]
    #: Secret holding the incoming-webhook URL (its path is the credential).
    url_secret: str

    def secret_refs(self) -> tuple[str, ...]:
        return (self.url_secret,)


class SlackChannel:
    def __init__(self, name: str, config: SlackConfig, secrets: dict[str, str], client: httpx.AsyncClient) -> None:
        self._name = name
        self._url = require_secret(name, secrets, config.url_secret)
        self._timeout = config.timeout.total_seconds()
        self._client = client
        self._redact = Redactor([*url_secret_parts(self._url)])

    @property
    def name(self) -> str:
        return self._name

    async def send(self, notification: Notification) -> Delivery:
        payload = {"text": f"*{notification.title}*\n{notification.text}"}
        delivery, _ = await post_json(
            self._client, self._url, payload, timeout=self._timeout, redact=self._redact
        )
        return delivery
