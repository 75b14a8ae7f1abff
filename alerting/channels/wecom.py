"""WeCom group robot (企业微信群机器人), markdown message.

WeCom answers HTTP 200 with ``errcode``; 0 is success, 45009 ("api freq out of limit")
and -1 ("system busy") are worth retrying, anything else is not.
"""

from __future__ import annotations

from typing import Literal

import httpx

from alerting.channels.base import Delivery, ReceiverBase, require_secret
from alerting.channels.http import post_json, robot_errcode
from alerting.decisions import Notification
from alerting.redaction import Redactor, url_secret_parts

RETRYABLE_ERRCODES = frozenset({-1, 45009})


class WeComConfig(ReceiverBase):
    type: Literal["wecom"]
    #: Secret holding the robot URL (``.../cgi-bin/webhook/send?key=...``).
    url_secret: str

    def secret_refs(self) -> tuple[str, ...]:
        return (self.url_secret,)


class WeComChannel:
    def __init__(self, name: str, config: WeComConfig, secrets: dict[str, str], client: httpx.AsyncClient) -> None:
        self._name = name
        self._url = require_secret(name, secrets, config.url_secret)
        self._timeout = config.timeout.total_seconds()
        self._client = client
        self._redact = Redactor([*url_secret_parts(self._url)])

    @property
    def name(self) -> str:
        return self._name

    async def send(self, notification: Notification) -> Delivery:
        payload = {"msgtype": "markdown", "markdown": {"content": f"**{notification.title}**\n{notification.text}"}}
        delivery, response = await post_json(
            self._client, self._url, payload, timeout=self._timeout, redact=self._redact
        )
        if not delivery.ok or response is None:
            return delivery
        return robot_errcode(response, delivery, RETRYABLE_ERRCODES, self._redact)
