"""WeCom group robot (企业微信群机器人), markdown message.

WeCom answers HTTP 200 with ``errcode``; 0 is success, 45009 ("api freq out of limit")
and -1 ("system busy") are worth retrying, anything else is not.
"""

from __future__ import annotations

from typing import Literal

from alerting.channels.base import Delivery
from alerting.channels.http import UrlSecretChannel, UrlSecretConfig, robot_errcode
from alerting.decisions import Notification

RETRYABLE_ERRCODES = frozenset({-1, 45009})


class WeComChannel(UrlSecretChannel):
    async def send(self, notification: Notification) -> Delivery:
        payload = {"msgtype": "markdown", "markdown": {"content": f"**{notification.title}**\n{notification.text}"}}
        delivery, response = await self._post(payload)
        if not delivery.ok or response is None:
            return delivery
        return robot_errcode(response, delivery, RETRYABLE_ERRCODES, self._redact)


class WeComConfig(UrlSecretConfig):
    """The robot URL is ``.../cgi-bin/webhook/send?key=...``."""

    type: Literal["wecom"]
    channel_class = WeComChannel
