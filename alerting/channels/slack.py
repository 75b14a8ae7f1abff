"""Slack-compatible incoming webhook (also Mattermost, Rocket.Chat): ``{"text": ...}``."""

from __future__ import annotations

from typing import Literal

import httpx

from alerting.channels.base import Channel, Delivery
from alerting.channels.http import UrlSecretChannel, UrlSecretConfig
from alerting.decisions import Notification


class SlackConfig(UrlSecretConfig):
    type: Literal["slack"]

    def channel(self, name: str, secrets: dict[str, str], client: httpx.AsyncClient) -> Channel:
        return SlackChannel(name, self, secrets, client)


class SlackChannel(UrlSecretChannel):
    async def send(self, notification: Notification) -> Delivery:
        delivery, _ = await self._post({"text": f"*{notification.title}*\n{notification.text}"})
        return delivery
