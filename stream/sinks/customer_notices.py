"""Customer delay notices: what to tell a customer whose order became at risk or late.

One notice per order and *cause* (``at_risk``, ``late``), to every configured receiver
(``config/customer_notices.yaml``: the merchant's SMS/WeChat gateway as a signed webhook,
and email). The receivers are the alerting channels (:mod:`alerting.channels`) and the
notices travel through the alerting outbox and delivery stage (retries, backoff,
abandonment): this module only decides and renders. Secrets come from the same
``ORDERRADAR_ALERT_SECRET_<NAME>`` variables as the alert receivers; a receiver whose
secrets are not set is left out (logged), so nothing is sent by default.

The webhook body is the notification (``notification_id`` = ``notice/<order>/<cause>/<receiver>``,
``alert_id`` = ``order/<order>``, ``labels``: ``order_id``, ``cause``, ``eta_from``, ``eta_to``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field

from alerting.channels import ReceiverConfig, configured_channels
from alerting.channels.base import Channel
from alerting.decisions import Language, Notification, NotificationKind
from alerting.tier import Tier

log = logging.getLogger(__name__)

#: InfluxDB measurement of the notices' lifecycle (queued, delivered, failed, abandoned).
MEASUREMENT = "customer_notices"


class NoticeConfig(BaseModel):
    """``config/customer_notices.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    language: Language = "zh-CN"
    receivers: dict[str, ReceiverConfig] = Field(default_factory=dict)


def load_notice_config(path: Path) -> NoticeConfig:
    if not path.exists():
        return NoticeConfig(enabled=False)
    return NoticeConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def build_channels(config: NoticeConfig, secrets: Mapping[str, str], client: httpx.AsyncClient) -> dict[str, Channel]:
    """The receivers whose secrets are set; the others are logged and left out."""
    if not config.enabled:
        return {}
    return configured_channels(config.receivers, secrets, client, "customer notice receiver")


_TEXT: dict[str, dict[str, str]] = {
    "zh-CN": {
        "at_risk": "您的订单 {order} 可能晚于承诺时间送达。新的预计送达时间：{window}。",
        "late": "您的订单 {order} 已超过承诺送达时间。新的预计送达时间：{window}。",
        "title": "订单 {order} 配送延误通知",
    },
    "en": {
        "at_risk": "Your order {order} may arrive after the promised time. New estimated delivery: {window}.",
        "late": "Your order {order} is past its promised delivery time. New estimated delivery: {window}.",
        "title": "Delivery update for order {order}",
    },
}


def _window(eta: Mapping[str, Any]) -> str:
    zone = timezone(timedelta(minutes=int(eta.get("tz_offset_min") or 0)))
    start = datetime.fromisoformat(eta["from"]).astimezone(zone)
    end = datetime.fromisoformat(eta["to"]).astimezone(zone)
    if start.date() == end.date():
        return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M}"
    return f"{start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M}"


def notice_id(order_id: str, cause: str, receiver: str) -> str:
    return f"notice/{order_id}/{cause}/{receiver}"


def notices(
    order_id: str, cause: str, eta: Mapping[str, Any], receivers: list[str], language: Language, now: datetime
) -> list[Notification]:
    """The notifications of one order and cause, one per receiver."""
    words = _TEXT[language]
    window = _window(eta)
    return [
        Notification(
            notification_id=notice_id(order_id, cause, receiver),
            alert_id=f"order/{order_id}",
            kind=NotificationKind.FIRING,
            receiver=receiver,
            language=language,
            tier=Tier.P4,
            title=words["title"].format(order=order_id),
            text=words[cause].format(order=order_id, window=window),
            labels={"order_id": order_id, "cause": cause, "eta_from": eta["from"], "eta_to": eta["to"]},
            incident_ids=(),
            created_at=now,
        )
        for receiver in receivers
    ]


__all__ = ["MEASUREMENT", "NoticeConfig", "build_channels", "load_notice_config", "notice_id", "notices"]
