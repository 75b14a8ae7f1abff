"""ETA windows and customer delay notices through the real worker, web tier and receivers
(issue 18, items 2 and 3).

Events go onto ``order-events``; the real worker computes each order's ETA window from
the lane statistics (``stream/core/order_eta.py``) and sends one notice per order and cause
through the alerting channels (``stream/stages/notice_stage.py``) to a real webhook
receiver (signature checked here) and a real SMTP server; the real gateway serves the
tracking page to headless Chromium.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from alerting_receivers import Script, http_receiver, smtp_receiver
from selenium.common.exceptions import TimeoutException
from stream_harness import CHINA, influx_query, json_event, send_json, start_worker

from config.settings import Settings
from dashboard.gateway.staff import StaffDirectory
from gateway.harness import RunningGateway, read_topic, running_gateways
from orderradar.devstack.isolation import isolated_settings
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from stream.core.replay import REPLAY_HEADER
from stream.topics import ORDER_EVENTS, WARROOM_UPDATES
from tracking.browser import chromium, wait_for
from tracking.stack import WebServer

TESTS = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LANE = {"warehouse": "w-eta", "carrier": "c-eta", "region": "r-eta"}
SIGNING = "sign-" + "k" * 32
SMTP_USER, SMTP_PASSWORD = "notices", "smtp-" + "p" * 20
HOOK_TOKEN = "hook" + "t" * 20


@dataclass
class Stack:
    settings: Settings
    server: RunningGateway
    #: The tracking pages' web tier (a process of its own).
    web: WebServer
    hook: Script
    mail: Script
    worker: ManagedProcess
    log: Path


event = partial(json_event, **LANE)


def send_replayed(settings: Settings, events: list[dict[str, Any]], replay_id: str) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for e in events:
                await producer.send_and_wait(
                    settings.topic(ORDER_EVENTS),
                    orjson.dumps(e),
                    key=e["order_id"].encode(),
                    headers=[(REPLAY_HEADER, replay_id.encode())],
                )
        finally:
            await producer.stop()

    asyncio.run(go())


def seed_lane(settings: Settings, server: RunningGateway, prefix: str, count: int, hours: float) -> None:
    """``count`` delivered orders that took ``hours`` from hub arrival to delivery."""
    now = datetime.now(UTC)
    events = []
    for i in range(count):
        oid = f"{prefix}-{i}"
        start = now - timedelta(hours=hours + 1, seconds=i)
        events += [
            event(oid, 0, "paid", start - timedelta(hours=1)),
            event(oid, 1, "hub_arrival", start),
            event(oid, 2, "delivered", start + timedelta(hours=hours)),
        ]
    send_json(settings, events)
    last = f"{prefix}-{count - 1}"
    wait_until(
        lambda: '"delivered"' in json.dumps(snapshot_of(server, last).get("rollup")), 90, what=f"{last} delivered"
    )


def snapshot_of(server: RunningGateway, order_id: str) -> dict[str, Any]:
    cached = server.gateway.orders.get(order_id)
    return orjson.loads(cached.raw) if cached is not None else {}


def eta_of(server: RunningGateway, order_id: str) -> dict[str, Any] | None:
    return (snapshot_of(server, order_id).get("extensions") or {}).get("eta")


def verified(request: dict[str, Any]) -> dict[str, Any]:
    """The webhook body, after checking its signature as a receiver would."""
    header = {k.lower(): v for k, v in request["headers"].items()}["x-orderradar-signature"]
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(SIGNING.encode(), f"{parts['t']}.".encode() + request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected), "bad signature"
    return dict(json.loads(request["body"]))


def hooks_for(script: Script, order_id: str) -> list[dict[str, Any]]:
    return [verified(r) for r in script.delivered if json.loads(r["body"])["labels"]["order_id"] == order_id]


def mails_for(script: Script, order_id: str) -> list[dict[str, Any]]:
    return [r for r in script.delivered if order_id in str(r.get("body", r))]


def notice_points(settings: Settings, order_id: str, event_type: str) -> list[list[object]]:
    return influx_query(
        settings,
        f"SELECT order_id, detail, receiver FROM customer_notices "
        f"WHERE order_id = '{order_id}' AND event = '{event_type}'",
    )


@pytest.fixture(scope="module")
def stack(broker: Any, influx: Any, tmp_path_factory: pytest.TempPathFactory, staff: StaffDirectory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("notices")
    with http_receiver(b"{}") as (base, hook), smtp_receiver(SMTP_USER, SMTP_PASSWORD) as (smtp_port, mail):
        config = tmp / "customer_notices.yaml"
        config.write_text(
            "enabled: true\nlanguage: en\nreceivers:\n"
            "  gateway: {type: webhook, url_secret: t_hook_url, signing_secret: t_hook_sign}\n"
            f"  mail: {{type: email, host: 127.0.0.1, port: {smtp_port}, security: none, username: {SMTP_USER},"
            " password_secret: t_smtp_pw, sender: radar@example.com, to: [notices@example.com]}\n",
            encoding="utf-8",
        )
        secrets = {
            "ORDERRADAR_ALERT_SECRET_T_HOOK_URL": f"{base}/notify/{HOOK_TOKEN}",
            "ORDERRADAR_ALERT_SECRET_T_HOOK_SIGN": SIGNING,
            "ORDERRADAR_ALERT_SECRET_T_SMTP_PW": SMTP_PASSWORD,
        }
        os.environ.update(secrets)
        try:
            settings = isolated_settings(broker.bootstrap, influx.url, influx.root.parent, customer_notices_file=config)
            log = tmp / "worker.log"
            stacks: list[Stack] = []
            worker = start_worker(settings, log, worker_log_level="warning", core_only=False)
            try:
                web = WebServer(settings, tmp).start()
                try:
                    with running_gateways(settings, staff) as (server,):
                        stacks.append(Stack(settings, server, web, hook, mail, worker, log))
                        yield stacks[-1]
                finally:
                    web.stop()
            finally:
                stack_worker = stacks[-1].worker if stacks else worker
                stack_worker.stop()
        finally:
            for name in secrets:
                os.environ.pop(name, None)


def page_text(web: WebServer, order_id: str, lang: str, wanted: str) -> str:
    token = web.issue_link(order_id)
    with chromium(lang=lang) as driver:
        driver.get(f"{web.url}/t/{token}?lang={lang}")
        seen = [""]

        def shown(d: Any) -> str | None:
            seen[0] = d.find_element("tag name", "main").text
            return seen[0] if wanted in seen[0] else None

        try:
            return wait_for(driver, shown, 30)
        except TimeoutException:
            raise AssertionError(f"{wanted!r} not on the page, which shows: {seen[0]!r}") from None


def when(eta: dict[str, Any], lang: str) -> str:
    """The day word of a window, in the order's time zone (China here)."""
    days = (datetime.fromisoformat(eta["from"]).astimezone(CHINA).date() - datetime.now(CHINA).date()).days
    if days in (0, 1):
        return {"en": ("today", "tomorrow"), "zh-CN": ("今天", "明天")}[lang][days]
    return ""


def window_words(eta: dict[str, Any]) -> str:
    start = datetime.fromisoformat(eta["from"]).astimezone(CHINA)
    end = datetime.fromisoformat(eta["to"]).astimezone(CHINA)
    return f"{start:%H:%M}–{end:%H:%M}"


def test_eta_window_from_lane_statistics_moves_after_a_slower_scan(stack: Stack) -> None:
    settings, server = stack.settings, stack.server
    seed_lane(settings, server, "o-fast", 40, hours=2)
    now = datetime.now(UTC)
    send_json(
        settings,
        [
            event("o-eta", 0, "paid", now - timedelta(minutes=30), promised_by=(now + timedelta(hours=20)).isoformat()),
            event("o-eta", 1, "hub_arrival", now, node="HUB-A"),
        ],
    )
    eta = wait_until(lambda: eta_of(server, "o-eta"), 90, what="ETA of o-eta")
    assert eta["basis"] == "lanes" and eta["state"] == "on_track" and eta["tz_offset_min"] == 480
    start, end = datetime.fromisoformat(eta["from"]), datetime.fromisoformat(eta["to"])
    assert now + timedelta(hours=1.5) < start <= end < now + timedelta(hours=2.6), eta

    text = page_text(stack.web, "o-eta", "en", window_words(eta))
    assert f"Arrives {when(eta, 'en')} {window_words(eta)}" in text, text
    assert "delayed" not in text

    # The lane slows down (most recent parcels took 8 h); the order's next scan moves its window.
    seed_lane(settings, server, "o-slow", 120, hours=8)
    send_json(settings, [event("o-eta", 2, "hub_arrival", datetime.now(UTC), node="HUB-B")])
    moved = wait_until(
        lambda: (e := eta_of(server, "o-eta")) and e["from"] != eta["from"] and e, 90, what="the window of o-eta moves"
    )
    assert datetime.fromisoformat(moved["from"]) > start + timedelta(hours=4), moved
    text = page_text(stack.web, "o-eta", "zh-CN", window_words(moved))
    assert "送达" in text and window_words(moved) in text, text


def test_late_order_is_told_once_per_cause_with_retries_and_a_record(stack: Stack) -> None:
    settings, server = stack.settings, stack.server
    stack.hook.steps[:] = ["transient"]  # the merchant's gateway fails once: retried
    now = datetime.now(UTC)
    records = [
        event("o-late-1", 0, "paid", now - timedelta(hours=3), promised_by=(now - timedelta(minutes=30)).isoformat()),
        event("o-late-1", 1, "hub_arrival", now, node="HUB-A"),
    ]
    send_json(settings, records)
    wait_until(lambda: (e := eta_of(server, "o-late-1")) and e["state"] == "late", 90, what="o-late-1 late")
    delivered = wait_until(
        lambda: notice_points(settings, "o-late-1", "delivered") or None, 60, what="notices of o-late-1 delivered"
    )
    assert {row[3] for row in delivered} == {"gateway", "mail"}
    hooks = hooks_for(stack.hook, "o-late-1")
    assert len(hooks) == 1 and hooks[0]["labels"]["cause"] == "late"
    assert "past its promised delivery time" in hooks[0]["text"]
    attempts = [r for r in stack.hook.requests if b"o-late-1" in r["body"]]
    assert [r["answered"] for r in attempts] == ["transient", "ok"]
    assert any("attempts=2" in str(row[2]) for row in delivered if row[3] == "gateway"), delivered
    wait_until(lambda: len(mails_for(stack.mail, "o-late-1")) == 1, 30, what="one email")

    view = server.gateway.orders.get("o-late-1").view.as_dict()  # type: ignore[union-attr]
    eta = view["eta_window"]
    assert view["delay"] == {"reason": "late", "eta": {k: eta[k] for k in ("from", "to", "tz_offset_min")}}
    # The war-room's KPI strip counts it as an ETA slip (its window ends after its promise).
    assert datetime.fromisoformat(eta["to"]) > now - timedelta(minutes=30)
    # (the browser reads eta_slips from that item: tests/warroom/test_views_js.py)
    read_topic(
        settings,
        WARROOM_UPDATES,
        lambda items: any(
            i.get("type") == "kpis" and i.get("key") == "national" and i.get("eta_slips", 0) >= 1 for i in items
        ),
        60,
    )
    text = page_text(stack.web, "o-late-1", "en", "Past the promised delivery time")
    assert f"New estimated delivery: {when(eta, 'en')} {window_words(eta)}" in text, text
    text = page_text(stack.web, "o-late-1", "zh-CN", "已超过承诺送达时间")
    assert f"新的预计送达时间：{when(eta, 'zh-CN')} {window_words(eta)}" in text, text

    # The same records again, a worker restart, another scan: still one notice per channel.
    send_json(settings, records)
    stack.worker.stop()
    stack.worker = start_worker(
        settings, stack.log.with_name("worker-2.log"), worker_log_level="warning", core_only=False
    )
    later = datetime.now(UTC)
    send_json(
        settings,
        [
            event("o-late-1", 2, "hub_arrival", later, node="HUB-B"),
            event(
                "o-late-2",
                0,
                "paid",
                later - timedelta(hours=3),
                promised_by=(later - timedelta(minutes=5)).isoformat(),
            ),
            event("o-late-2", 1, "hub_arrival", later, node="HUB-A"),
        ],
    )
    wait_until(lambda: notice_points(settings, "o-late-2", "delivered") or None, 120, what="o-late-2 noticed")
    wait_until(lambda: "o-late-1-2" in json.dumps(snapshot_of(server, "o-late-1")), 60, what="o-late-1 rescanned")
    assert len(hooks_for(stack.hook, "o-late-1")) == 1
    assert len(mails_for(stack.mail, "o-late-1")) == 1
    assert len(notice_points(settings, "o-late-1", "queued")) == 2


def test_a_replayed_order_notifies_nobody(stack: Stack) -> None:
    settings, server = stack.settings, stack.server
    now = datetime.now(UTC)
    send_replayed(
        settings,
        [
            event(
                "o-replay-1", 0, "paid", now - timedelta(hours=3), promised_by=(now - timedelta(hours=1)).isoformat()
            ),
            event("o-replay-1", 1, "hub_arrival", now - timedelta(minutes=10), node="HUB-A"),
        ],
        "notice-test",
    )
    wait_until(
        lambda: (snapshot_of(server, "o-replay-1").get("extensions") or {}).get("replay"), 90, what="replayed order"
    )
    send_json(
        settings,
        [
            event(
                "o-late-3", 0, "paid", now - timedelta(hours=3), promised_by=(now - timedelta(minutes=5)).isoformat()
            ),
            event("o-late-3", 1, "hub_arrival", now, node="HUB-A"),
        ],
    )
    wait_until(lambda: notice_points(settings, "o-late-3", "delivered") or None, 90, what="o-late-3 noticed")
    assert not notice_points(settings, "o-replay-1", "queued")
    assert not hooks_for(stack.hook, "o-replay-1") and not mails_for(stack.mail, "o-replay-1")
