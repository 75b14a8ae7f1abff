"""Slack-compatible incoming webhook (also Mattermost, Rocket.Chat): ``{"text": ...}``."""

from __future__ import annotations

from typing import Literal

from alerting.channels.base import Delivery
from alerting.channels.http import UrlSecretChannel, UrlSecretConfig
from alerting.decisions import Notification


class SlackChannel(UrlSecretChannel):
    async def send(self, notification: Notification) -> Delivery:
        delivery, _ = await self._post({"text": f"*{notification.title}*\n{notification.text}"})
        return delivery


class SlackConfig(UrlSecretConfig):
    type: Literal["slack"]
    channel_class = SlackChannel
