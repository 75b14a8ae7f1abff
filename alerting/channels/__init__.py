"""Channels: one module per destination, and the registry that builds them from config.

``ReceiverConfig`` is the union of every channel's config model, keyed by ``type``;
:func:`build_channels` turns the policy's receivers plus the secrets into channels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated

import httpx
from pydantic import Field

from alerting.channels.base import Channel, Delivery, MissingSecretError, ReceiverBase
from alerting.channels.dingtalk import DingTalkChannel, DingTalkConfig
from alerting.channels.email import EmailChannel, EmailConfig
from alerting.channels.log import LogChannel, LogConfig
from alerting.channels.slack import SlackChannel, SlackConfig
from alerting.channels.webhook import WebhookChannel, WebhookConfig
from alerting.channels.wecom import WeComChannel, WeComConfig

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
    plain = dict(secrets)
    if isinstance(config, WebhookConfig):
        return WebhookChannel(name, config, plain, client)
    if isinstance(config, SlackConfig):
        return SlackChannel(name, config, plain, client)
    if isinstance(config, DingTalkConfig):
        return DingTalkChannel(name, config, plain, client)
    if isinstance(config, WeComConfig):
        return WeComChannel(name, config, plain, client)
    if isinstance(config, EmailConfig):
        return EmailChannel(name, config, plain)
    if isinstance(config, LogConfig):
        return LogChannel(name, config)
    raise TypeError(f"receiver {name!r}: no channel for config type {type(config).__name__}")


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
