"""Log channel: writes the notification to the ``alerting.channels.log`` logger.

For P4 "dashboard only" receivers, local development, and as a last-resort fallback.
"""

from __future__ import annotations

import logging
from typing import Literal

import httpx

from alerting.channels.base import Channel, Delivery, ReceiverBase
from alerting.decisions import Notification

logger = logging.getLogger(__name__)


class LogConfig(ReceiverBase):
    type: Literal["log"]
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def channel(self, name: str, secrets: dict[str, str], client: httpx.AsyncClient) -> Channel:
        return LogChannel(name, self)


class LogChannel:
    def __init__(self, name: str, config: LogConfig) -> None:
        self._name = name
        self._level = logging.getLevelName(config.level)

    @property
    def name(self) -> str:
        return self._name

    async def send(self, notification: Notification) -> Delivery:
        logger.log(
            self._level,
            "alert notification receiver=%s alert_id=%s kind=%s tier=%s title=%s",
            self._name,
            notification.alert_id,
            notification.kind.value,
            notification.tier.value,
            notification.title,
        )
        return Delivery(ok=True)
