"""The contract every channel must honour, against real receivers on 127.0.0.1.

Parametrised over every channel (Alertmanager's ``notify/test`` idea): success,
transient failures retried until recovery, 429 + Retry-After honoured, other 4xx not
retried, network errors and timeouts retried, secrets never in logs or error texts, and
a receiver that fails for a while then recovers gets each notification exactly once.
Backoff sleeps are injected (recorded, not slept).
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import pytest
from alerting_receivers import Script, closed_port, http_receiver, smtp_receiver
from alerting_testkit import T0

from alerting.backoff import RetryPolicy
from alerting.channels import Channel, build_channel
from alerting.channels.base import ReceiverBase
from alerting.channels.dingtalk import DingTalkConfig
from alerting.channels.email import EmailConfig
from alerting.channels.http import make_client
from alerting.channels.log import LogConfig
from alerting.channels.slack import SlackConfig
from alerting.channels.webhook import WebhookConfig
from alerting.channels.wecom import WeComConfig
from alerting.decisions import AlertEventType, Notification, NotificationKind
from alerting.delivery import DeliveryStage
from alerting.outbox import NotificationOutbox
from alerting.tier import Tier

T = TypeVar("T")

TOKEN = "tokA1b2C3d4E5f6G7h8"
BEARER = "bearerZ9y8X7w6V5u4"
DING_SECRET = "SECd41d8cd98f00b204e9800998ecf8427e"
SMTP_PASSWORD = "smtp-Pa55word-Q1w2E3"
ALL_SECRETS = (TOKEN, BEARER, DING_SECRET, SMTP_PASSWORD)

POLICY = RetryPolicy(attempts=3, base_delay=0.5, max_delay=4.0, jitter=0.5, attempt_timeout=5.0)
TIMEOUT = "300ms"  # the channels' own request timeout in the timeout cases

ALL = ["webhook", "slack", "dingtalk", "wecom", "email", "log"]
NETWORKED = ["webhook", "slack", "dingtalk", "wecom", "email"]
HTTP = ["webhook", "slack", "dingtalk", "wecom"]

TITLE = "[P2 FIRING] 上海枢纽 HUB-SH-01 停止扫描"


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def notification(number: int = 1) -> Notification:
    return Notification(
        notification_id=f"al-test/n{number}",
        alert_id="al-test",
        kind=NotificationKind.FIRING,
        receiver="rx",
        language="zh-CN",
        tier=Tier.P2,
        title=TITLE,
        text="影响：订单 150 单，SKU 300 个。\nImpact: 150 orders.",
        labels={"kind": "hub_stall", "region": "east"},
        incident_ids=("hub-1",),
        created_at=T0,
    )


@dataclass
class Rig:
    kind: str
    config: ReceiverBase
    secrets: dict[str, str]
    script: Script | None

    def channel(self, client: httpx.AsyncClient) -> Channel:
        return build_channel("rx", self.config, self.secrets, client)

    async def deliver(self, stage_policy: RetryPolicy = POLICY) -> tuple[Any, int, list[float]]:
        sleeps: list[float] = []

        async def record_sleep(seconds: float) -> None:
            sleeps.append(seconds)

        async with make_client(trust_env=False) as client:
            stage = DeliveryStage({"rx": self.channel(client)}, stage_policy, sleep=record_sleep)
            delivery, attempts = await stage.send(notification())
        return delivery, attempts, sleeps

    @property
    def requests(self) -> list[dict[str, Any]]:
        assert self.script is not None
        return self.script.requests


def _http_config(kind: str, base: str, timeout: str) -> tuple[ReceiverBase, dict[str, str]]:
    if kind == "webhook":
        return (
            WebhookConfig(type="webhook", url_secret="url", bearer_secret="bearer", timeout=timeout),  # type: ignore[arg-type]
            {"url": f"{base}/hooks/{TOKEN}", "bearer": BEARER},
        )
    if kind == "slack":
        return SlackConfig(type="slack", url_secret="url", timeout=timeout), {"url": f"{base}/services/T0/B0/{TOKEN}"}  # type: ignore[arg-type]
    if kind == "dingtalk":
        return (
            DingTalkConfig(type="dingtalk", url_secret="url", sign_secret="sign", timeout=timeout),  # type: ignore[arg-type]
            {"url": f"{base}/robot/send?access_token={TOKEN}", "sign": DING_SECRET},
        )
    if kind == "wecom":
        return WeComConfig(type="wecom", url_secret="url", timeout=timeout), {
            "url": f"{base}/cgi-bin/webhook/send?key={TOKEN}"
        }  # type: ignore[arg-type]
    raise AssertionError(kind)


_SUCCESS = {
    "webhook": (b'{"ok": true}', "application/json"),
    "slack": (b"ok", "text/plain"),
    "dingtalk": (b'{"errcode": 0, "errmsg": "ok"}', "application/json"),
    "wecom": (b'{"errcode": 0, "errmsg": "ok"}', "application/json"),
}


def _make_rig(kind: str, stack: ExitStack, *, closed: bool, timeout: str) -> Rig:
    if kind == "log":
        return Rig(kind, LogConfig(type="log", level="WARNING"), {}, None)
    if kind == "email":
        if closed:
            port, script = closed_port(), None
        else:
            port, script = stack.enter_context(smtp_receiver("alerts", SMTP_PASSWORD))
        config: ReceiverBase = EmailConfig(
            type="email",
            host="127.0.0.1",
            port=port,
            security="none",
            username="alerts",
            password_secret="smtp",
            sender="radar@example.com",
            to=("ops@example.com",),
            timeout=timeout,  # type: ignore[arg-type]
        )
        return Rig(kind, config, {"smtp": SMTP_PASSWORD}, script)
    if closed:
        base, script = f"http://127.0.0.1:{closed_port()}", None
    else:
        body, ctype = _SUCCESS[kind]
        base, script = stack.enter_context(http_receiver(body, ctype))
    config, secrets = _http_config(kind, base, timeout)
    return Rig(kind, config, secrets, script)


def make_rig(
    kind: str, stack: ExitStack, *, closed: bool = False, timeout: str = "5s", steps: Sequence[str] = ()
) -> Rig:
    """A receiver of ``kind`` and its channel; the receiver answers ``steps`` first, then success."""
    rig = _make_rig(kind, stack, closed=closed, timeout=timeout)
    if steps:
        assert rig.script is not None
        rig.script.steps = list(steps)
    return rig


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def delivered_text(rig: Rig, request: dict[str, Any]) -> str:
    """What the receiver got, decoded, for content checks."""
    if rig.kind == "email":
        message = email.message_from_bytes(request["body"], policy=email.policy.default)
        return f"{message['Subject']}\n{message.get_body().get_content()}"  # type: ignore[union-attr]
    return json.dumps(json.loads(request["body"]), ensure_ascii=False)


# -- the contract ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL)
def test_success_delivers_once_with_content(kind: str, stack: ExitStack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rig = make_rig(kind, stack)
    delivery, attempts, sleeps = run(rig.deliver())
    assert delivery.ok and attempts == 1 and sleeps == []
    if kind == "log":
        assert TITLE in caplog.text
        return
    [request] = rig.requests
    text = delivered_text(rig, request)
    assert "上海枢纽" in text and "150" in text
    if kind == "webhook":
        assert request["headers"]["Authorization"] == f"Bearer {BEARER}"
        assert json.loads(request["body"])["notification_id"] == "al-test/n1"
    if kind == "dingtalk":
        # The 加签 signature checks out against our own HMAC of timestamp + secret.
        timestamp = request["query"]["timestamp"][0]
        expected = base64.b64encode(
            hmac.new(DING_SECRET.encode(), f"{timestamp}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
        ).decode()
        assert request["query"]["sign"] == [expected]
        assert request["query"]["access_token"] == [TOKEN]
    if kind == "email":
        assert rig.script is not None and rig.script.logins == ["alerts"]


@pytest.mark.parametrize("kind", NETWORKED)
def test_transient_failures_are_retried_until_recovery(kind: str, stack: ExitStack) -> None:
    rig = make_rig(kind, stack, steps=["transient", "transient"])
    delivery, attempts, sleeps = run(rig.deliver())
    assert delivery.ok and attempts == 3
    assert [r["answered"] for r in rig.requests] == ["transient", "transient", "ok"]
    # Exponential with jitter: 0.5 s then 1 s nominal, each within [50 %, 100 %].
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


@pytest.mark.parametrize("kind", HTTP)
def test_429_retry_after_is_honoured(kind: str, stack: ExitStack) -> None:
    rig = make_rig(kind, stack, steps=["rate_limited:7"])
    delivery, attempts, sleeps = run(rig.deliver())
    assert delivery.ok and attempts == 2
    assert sleeps == [7.0]


@pytest.mark.parametrize("kind", HTTP)
def test_retry_after_above_the_cap_is_capped(kind: str, stack: ExitStack) -> None:
    rig = make_rig(kind, stack, steps=["rate_limited:86400"])
    delivery, _, sleeps = run(rig.deliver())
    assert delivery.ok and sleeps == [POLICY.max_retry_after]


@pytest.mark.parametrize("kind", NETWORKED)
def test_permanent_rejection_is_not_retried(kind: str, stack: ExitStack) -> None:
    rig = make_rig(kind, stack, steps=["permanent"])
    delivery, attempts, sleeps = run(rig.deliver())
    assert not delivery.ok and not delivery.retryable
    assert attempts == 1 and sleeps == [] and len(rig.requests) == 1
    assert delivery.status == (550 if kind == "email" else 404)


@pytest.mark.parametrize("kind", NETWORKED)
def test_network_error_is_retried(kind: str, stack: ExitStack) -> None:
    rig = make_rig(kind, stack, closed=True)
    delivery, attempts, sleeps = run(rig.deliver())
    assert not delivery.ok and delivery.retryable and delivery.status is None
    assert attempts == POLICY.attempts and len(sleeps) == POLICY.attempts - 1
    assert delivery.error


@pytest.mark.parametrize("kind", NETWORKED)
def test_timeout_is_retryable(kind: str, stack: ExitStack) -> None:
    rig = make_rig(kind, stack, timeout=TIMEOUT, steps=["stall", "stall"])
    delivery, attempts, _ = run(rig.deliver(RetryPolicy(attempts=2, base_delay=0.1, attempt_timeout=5.0)))
    assert not delivery.ok and delivery.retryable
    assert "timeout" in (delivery.error or "").lower() or "timed out" in (delivery.error or "").lower()
    assert attempts == 2 and [r["answered"] for r in rig.requests] == ["stall", "stall"]


@pytest.mark.parametrize("kind", NETWORKED)
def test_receiver_down_for_a_while_gets_each_notification_exactly_once(kind: str, stack: ExitStack) -> None:
    rig = make_rig(kind, stack, steps=["transient"] * 5)  # outlasts one delivery call (3 attempts)
    outbox = NotificationOutbox()
    outbox.add(notification(1), T0)
    outbox.add(notification(2), T0)
    sleeps: list[float] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def scenario() -> list[list[Any]]:
        rounds = []
        async with make_client(trust_env=False) as client:
            stage = DeliveryStage({"rx": rig.channel(client)}, POLICY, sleep=record_sleep)
            rounds.append(await stage.deliver_due(outbox, T0))
            # Persisted between calls, as the worker would (table changelog).
            restored = NotificationOutbox.from_dict(json.loads(json.dumps(outbox.to_dict())))
            due = restored.next_due()
            assert due is not None and due > T0
            rounds.append(await stage.deliver_due(restored, due - timedelta(seconds=1)))
            rounds.append(await stage.deliver_due(restored, due))
            assert restored.pending() == [] and restored.abandoned() == []
            # A replayed decision (engine restored from an older snapshot) is not resent.
            assert restored.add(notification(1), due) is False
        return rounds

    first, early, later = run(scenario())
    assert [r.event for r in first] == [AlertEventType.DELIVERY_FAILED, AlertEventType.DELIVERY_FAILED]
    assert early == []
    assert sorted(r.event for r in later) == [AlertEventType.DELIVERED, AlertEventType.DELIVERED]
    delivered = [delivered_text(rig, r) for r in rig.script.delivered]
    assert len(delivered) == 2  # each exactly once
    # The first notification (queued first) was attempted first after recovery.
    assert [r["answered"] for r in rig.requests] == ["transient"] * 5 + ["ok", "ok"]


@pytest.mark.parametrize("kind", ALL)
def test_secrets_never_reach_logs_errors_or_records(
    kind: str, stack: ExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    outbox = NotificationOutbox()

    async def scenario(rig: Rig, steps: list[str], policy: RetryPolicy) -> None:
        if rig.script is not None:
            rig.script.steps = list(steps)
        async with make_client(trust_env=False) as client:
            stage = DeliveryStage({"rx": rig.channel(client)}, policy, sleep=_no_wait, secrets=())
            delivery, _ = await stage.send(notification())
            texts.append(repr(delivery))
            n = notification(len(texts) + 10)
            outbox.add(n, T0)
            texts.extend(json.dumps(r.to_dict()) for r in await stage.deliver_due(outbox, T0))

    quick = RetryPolicy(attempts=2, base_delay=0.01, attempt_timeout=5.0)
    rig = make_rig(kind, stack, timeout=TIMEOUT)
    failing = ["transient", "transient", "permanent"]
    if kind in HTTP:
        failing += ["rate_limited:1", "robot_error:310000" if kind in ("dingtalk", "wecom") else "permanent"]
    run(scenario(rig, failing + ["stall", "stall", "stall", "stall"], quick))
    if kind != "log":
        run(scenario(make_rig(kind, stack, closed=True), [], quick))
        # The secret really was used (so its absence below means something).
        assert rig.script is not None and rig.script.requests
        if kind == "email":
            assert rig.script.logins
        else:
            assert any(TOKEN in r["path"] or [TOKEN] in r["query"].values() for r in rig.requests)
    texts.append(json.dumps(outbox.to_dict()))
    haystack = caplog.text + "\n".join(texts)
    # There was something to look at: failures logged, or the log channel's own lines.
    assert ("delivery attempt failed" in caplog.text) if kind != "log" else (TITLE in caplog.text)
    for secret in ALL_SECRETS:
        assert secret not in haystack, f"{kind}: secret leaked"


async def _no_wait(seconds: float) -> None:
    return None


@pytest.mark.parametrize(
    ("kind", "code", "retryable"),
    [
        ("dingtalk", 130101, True),
        ("dingtalk", 310000, False),
        ("wecom", 45009, True),
        ("wecom", 93000, False),
    ],
)
def test_robot_errcodes(kind: str, code: int, retryable: bool, stack: ExitStack) -> None:
    rig = make_rig(kind, stack, steps=[f"robot_error:{code}"])
    delivery, attempts, _ = run(rig.deliver(RetryPolicy(attempts=1)))
    assert not delivery.ok and delivery.retryable is retryable
    assert f"errcode {code}" in (delivery.error or "") and TOKEN not in (delivery.error or "")


def test_unknown_receiver_is_abandoned_and_recorded() -> None:
    outbox = NotificationOutbox()
    outbox.add(notification(), T0)

    async def scenario() -> list[Any]:
        return await DeliveryStage({}, POLICY, sleep=_no_wait).deliver_due(outbox, T0)

    [record] = run(scenario())
    assert record.event is AlertEventType.DELIVERY_ABANDONED and "no channel" in record.detail
    assert [i.notification_id for i in outbox.abandoned()] == ["al-test/n1"]


def test_channel_factory_names_missing_secrets() -> None:
    async def scenario() -> None:
        async with make_client(trust_env=False) as client:
            build_channel("ops-chat", SlackConfig(type="slack", url_secret="slack_ops"), {}, client)

    with pytest.raises(KeyError, match="receiver 'ops-chat': secret 'slack_ops' is not set"):
        run(scenario())
