"""Engine -> outbox -> delivery against a real webhook receiver, across worker restarts.

The worker keeps engine state and outbox in one table; these tests replay the two ways
a worker can die (before sending, and after sending but before saving) and check that
nothing is lost and nothing is sent more than twice.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from alerting_receivers import http_receiver
from alerting_testkit import POLICY_YAML, T0, Clock, incident, notifications, write_policy

from alerting.backoff import RetryPolicy
from alerting.channels import build_channels
from alerting.channels.base import Delivery
from alerting.channels.http import make_client
from alerting.decisions import AlertEventType
from alerting.delivery import DeliveryStage
from alerting.engine import AlertEngine
from alerting.links import LinkSigner
from alerting.outbox import NotificationOutbox
from alerting.policy import AlertPolicy, load_policy

HOOK_TOKEN = "hookTokenQ9w8E7r6"


def webhook_policy(tmp_path: Path) -> AlertPolicy:
    text = POLICY_YAML
    for name in ("ops-chat", "alice-pager", "bob-pager"):
        text = text.replace(f"  {name}: {{type: log}}", f"  {name}: {{type: webhook, url_secret: {name}}}")
    return load_policy(write_policy(tmp_path, text))


def save(engine: AlertEngine, outbox: NotificationOutbox) -> str:
    return json.dumps({"engine": engine.to_dict(), "outbox": outbox.to_dict()})


def load(policy: AlertPolicy, blob: str, links: LinkSigner | None = None) -> tuple[AlertEngine, NotificationOutbox]:
    data = json.loads(blob)
    return AlertEngine.from_dict(policy, data["engine"], links=links), NotificationOutbox.from_dict(data["outbox"])


async def deliver(policy: AlertPolicy, base: str, outbox: NotificationOutbox, now: Any) -> list[Any]:
    secrets = {name: f"{base}/{name}/{HOOK_TOKEN}" for name in ("ops-chat", "alice-pager", "bob-pager")}
    receivers = {k: v for k, v in policy.receivers.items() if k in secrets}

    async def no_wait(seconds: float) -> None:
        return None

    async with make_client(trust_env=False) as client:
        stage = DeliveryStage(build_channels(receivers, secrets, client), RetryPolicy(), sleep=no_wait)
        return await stage.deliver_due(outbox, now)


def test_worker_restarts_lose_nothing_and_duplicate_at_most_once(tmp_path: Path) -> None:
    policy = webhook_policy(tmp_path)
    links = LinkSigner(b"s" * 32, "https://radar.example.com")
    clock = Clock(T0)
    with http_receiver(b"{}") as (base, script):
        engine, outbox = AlertEngine(policy, links=links), NotificationOutbox()
        engine.observe_incident(incident("hub-1"), clock.now)
        decisions = engine.tick(clock.at(seconds=30))
        outbox.add_all(notifications(decisions), clock.now)
        table = save(engine, outbox)  # committed with the decisions, before sending

        # Crash 1: the worker dies before sending. A new worker restores and sends.
        engine, outbox = load(policy, table, links)
        records = asyncio.run(deliver(policy, base, outbox, clock.now))
        assert [r.event for r in records] == [AlertEventType.DELIVERED] * 2
        # Crash 2: it dies after sending but before saving the outbox: resent once.
        engine, outbox = load(policy, table, links)
        asyncio.run(deliver(policy, base, outbox, clock.now))
        table = save(engine, outbox)

        # Escalation continues on the restored engine: bob at +10 min, exactly once.
        engine, outbox = load(policy, table, links)
        outbox.add_all(notifications(engine.tick(clock.at(minutes=10, seconds=30))), clock.now)
        outbox.add_all(notifications(engine.tick(clock.at(minutes=11))), clock.now)
        asyncio.run(deliver(policy, base, outbox, clock.now))

    paths = Counter(r["path"].split("/")[1] for r in script.requests)
    assert paths == {"ops-chat": 2, "alice-pager": 2, "bob-pager": 1}
    keys = Counter(r["headers"]["Idempotency-Key"] for r in script.requests)
    assert max(keys.values()) == 2  # the duplicate carries the same idempotency key
    page = json.loads(next(r["body"] for r in script.requests if r["path"].startswith("/alice-pager")))
    assert page["kind"] == "page" and page["user"] == "alice"
    assert page["ack_url"].startswith("https://radar.example.com/api/v1/alerts/")


def test_outbox_backs_off_between_calls_and_gives_up_loudly(engine: AlertEngine) -> None:
    start = T0
    engine.observe_incident(incident("hub-9"), start)
    engine_notice = notifications(engine.tick(start + timedelta(seconds=30)))[0]
    outbox = NotificationOutbox()
    outbox.add(engine_notice, start)
    policy = RetryPolicy(later_base_delay=30, later_max_delay=120, jitter=0.0, give_up_after=3600)
    failure = Delivery(ok=False, retryable=True, status=503, error="HTTP 503")
    dues = []
    now = start
    for _ in range(5):
        due = outbox.mark_failed(engine_notice.notification_id, failure, 3, now, policy)
        assert due is not None
        dues.append((due - now).total_seconds())
        now = due
    assert dues == [30, 60, 120, 120, 120]  # exponential, capped
    assert outbox.mark_failed(
        engine_notice.notification_id, Delivery(ok=False, retryable=True, retry_after=5), 1, now, policy
    ) == now + timedelta(seconds=5)
    assert outbox.mark_failed(engine_notice.notification_id, failure, 1, start + timedelta(hours=1), policy) is None
    [abandoned] = outbox.abandoned()
    assert abandoned.attempts == 17 and abandoned.last_status == 503
    assert outbox.due(start + timedelta(days=1)) == []  # kept, but not retried by itself
    outbox.requeue(engine_notice.notification_id, start + timedelta(days=1))
    assert len(outbox.due(start + timedelta(days=1))) == 1
