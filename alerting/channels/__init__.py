"""Channels: one module per destination, and the registry that builds them from config.

``ReceiverConfig`` is the registry: the union of every channel's config model, keyed by
``type``; each config builds its own channel (:meth:`ReceiverBase.channel`), so a new
channel is a module with a config and a channel plus one entry in that union.
:func:`build_channels` turns the policy's receivers plus the secrets into channels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated

import httpx
from pydantic import Field

from alerting.channels.base import Channel, Delivery, MissingSecretError, ReceiverBase
from alerting.channels.dingtalk import DingTalkConfig
from alerting.channels.email import EmailConfig
from alerting.channels.log import LogConfig
from alerting.channels.slack import SlackConfig
from alerting.channels.webhook import WebhookConfig
from alerting.channels.wecom import WeComConfig

#: The channel registry: every receiver ``type`` and its config model.
ReceiverConfig = Annotated[
    WebhookConfig | SlackConfig | DingTalkConfig | WeComConfig | EmailConfig | LogConfig,
    Field(discriminator="type"),
]

#: Environment prefix of alerting secrets: ``ORDERRADAR_ALERT_SECRET_SLACK_OPS`` -> ``slack_ops``.
SECRET_ENV_PREFIX = "ORDERRADAR_ALERT_SECRET_"

__all__ = [
    "Channel",
    "Delivery",
    "MissingSecretError",
    "ReceiverBase",
    "ReceiverConfig",
    "build_channel",
    "build_channels",
    "configured_channels",
]


def build_channel(name: str, config: ReceiverBase, secrets: Mapping[str, str], client: httpx.AsyncClient) -> Channel:
    """One channel; raises :class:`MissingSecretError` naming receiver and secret."""
    return config.channel(name, dict(secrets), client)


def build_channels(
    receivers: Mapping[str, ReceiverBase], secrets: Mapping[str, str], client: httpx.AsyncClient
) -> dict[str, Channel]:
    return {name: build_channel(name, config, secrets, client) for name, config in receivers.items()}


def configured_channels(
    receivers: Mapping[str, ReceiverBase], secrets: Mapping[str, str], client: httpx.AsyncClient, what: str
) -> dict[str, Channel]:
    """The channels of the receivers whose secrets are set; the others are logged (as ``what``,
    e.g. "alert receiver") and left out, so a missing secret never stops the worker."""
    channels: dict[str, Channel] = {}
    for name, config in receivers.items():
        try:
            channels[name] = build_channel(name, config, secrets, client)
        except MissingSecretError as exc:
            logging.getLogger(__name__).warning("%s %s is not configured: %s", what, name, exc)
    return channels
