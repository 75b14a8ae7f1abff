"""A hub that stops scanning is paged at P2 through the real worker, with a body that says so.

One worker with every stage and the alerting agent runs against the real broker and
InfluxDB. A feed produced at wall-clock pace sends 4 parcels a second from WH-1 to HZ-3,
where they arrive 10 s later and leave for delivery 10 s after that. After 70 s HZ-3
stops scanning (its parcels keep coming). The flow check opens a ``flow`` incident, the
delays engine counts HZ-3's in-flight orders into its estimate, and the alerting agent
pages the on-call person of the shipped policy at P2, through a real webhook receiver.

The flow checks are scaled 12x (1-minute slots to 5 s, the 3-minute window to 15 s, the
30-minute baseline to 2.5 min) so the test takes a few minutes, and the shipped P2 flow
rule's ``min_flow_duration`` (the check's window) is scaled with them. Promises are two
days away, so only the flow rule can make this page a P2 (no promise rule, fewer than 100
orders held up when it is sent). Receivers are rewritten to webhooks: the shipped
languages are kept, the on-call people's receivers (no language given) get English, so
the chat notice (zh-CN) and the page (en) both travel the real path.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaProducer
from alerting_receivers import Script, http_receiver

from config.settings import Settings, to_env
from orderradar.devstack.isolation import isolated_settings
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from stream.contract import OrderEvent, Status
from stream.topics import ORDER_EVENTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCALE = 12  # one minute of the shipped flow checks is 5 s here
FLOW = {
    "eval_every": "5s",
    "lateness": "2s",
    "window": "15s",
    "baseline": "150s",
    "warmup": "15s",
    "resolve_after": "1m",
}
RATE = 4  # parcels a second
WARM_S = 70.0  # healthy traffic before HZ-3 stops
#: (status, seconds after the order was paid, node); HZ-3's scans stop with the hub
LIFE: tuple[tuple[Status, float, str | None], ...] = (
    (Status.PAID, 0.0, None),
    (Status.PACKED, 0.5, "WH-1"),
    (Status.OUTBOUND_SCAN, 1.0, "WH-1"),
    (Status.LINEHAUL, 1.5, "WH-1"),
    (Status.HUB_ARRIVAL, 11.5, "HZ-3"),
    (Status.OUT_FOR_DELIVERY, 21.5, "HZ-3"),
    (Status.DELIVERED, 22.0, None),
)
AT_HUB = {Status.HUB_ARRIVAL, Status.OUT_FOR_DELIVERY, Status.DELIVERED}


def secret(receiver: str) -> str:
    return "hook_" + receiver.replace("-", "_")


def alerting_yaml() -> str:
    """The shipped policy, receivers as webhooks, grouping waits and the flow rule's window scaled."""
    policy = yaml.safe_load((REPO / "config" / "alerting.yaml").read_text(encoding="utf-8"))
    policy["receivers"] = {
        name: {"type": "webhook", "url_secret": secret(name), "language": spec.get("language", "en")}
        for name, spec in policy["receivers"].items()
    }
    for route in [policy["route"], *policy["route"].get("routes", [])]:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = "1s"
    flow_rules = 0
    for level in policy["tiers"]["levels"].values():
        for condition in level.get("when", []):
            if "min_flow_duration" in condition:
                minutes = int(str(condition["min_flow_duration"]).removesuffix("m"))
                condition["min_flow_duration"] = f"{minutes * 60 // SCALE}s"
                flow_rules += 1
    assert flow_rules == 1, "the shipped policy has one flow rule (P2) this test scales"
    return yaml.safe_dump(policy, allow_unicode=True, sort_keys=False)


def sla_yaml() -> str:
    rules = yaml.safe_load((REPO / "config" / "sla.yaml").read_text(encoding="utf-8"))
    rules["incidents"]["flow"].update(FLOW)
    return yaml.safe_dump(rules, allow_unicode=True)


def _event(order: int, paid: float, step: int) -> OrderEvent:
    status, offset, node = LIFE[step]
    attributes: dict[str, Any] = {"next_node": "HZ-3"} if status is Status.LINEHAUL else {}
    return OrderEvent(
        event_id=f"F{order:06d}-{step}",
        order_id=f"F{order:06d}",
        sku="SKU1",
        status=status,
        event_time=datetime.fromtimestamp(paid + offset, UTC),
        source="test",
        warehouse="WH-1",
        carrier="SF",
        channel="tmall",
        region="330000",
        promised_by=datetime.fromtimestamp(paid, UTC) + timedelta(days=2),
        order_value=100.0,
        attributes=attributes,
        **({"node": node} if node else {}),
    )


@dataclass
class Feed:
    """Produces the parcels' scans as their times come (a background thread)."""

    settings: Settings
    start: float
    stop_at: float
    done: threading.Event
    sent: int = 0

    async def run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, acks="all", linger_ms=5)
        await producer.start()
        topic = self.settings.topic(ORDER_EVENTS)
        due: list[tuple[float, int, int]] = []  # (time, order, step) not yet sent
        order, tick = 0, self.start
        try:
            while not self.done.is_set():
                for _ in range(RATE):  # this second's new orders, spread over it
                    paid = tick + _ / RATE
                    due += [(paid + offset, order, step) for step, (_s, offset, _n) in enumerate(LIFE)]
                    order += 1
                now = time.time()
                ready = sorted(d for d in due if d[0] <= now)
                due = [d for d in due if d[0] > now]
                for at, number, step in ready:
                    if LIFE[step][0] in AT_HUB and at >= self.stop_at:
                        continue  # HZ-3 stopped scanning
                    event = _event(number, at - LIFE[step][1], step)
                    await producer.send(
                        topic, event.to_json(), key=event.order_id.encode(), timestamp_ms=int(at * 1000)
                    )
                    self.sent += 1
                tick += 1.0
                # pace the feed to the wall clock: the flow checks restart their baseline
                # when event time runs ahead of receipt time (a catch-up)
                await asyncio.to_thread(self.done.wait, max(0.0, tick - time.time()))
        finally:
            await producer.stop()


@dataclass
class Run:
    stop_at: float
    script: Script

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.script.requests]


@pytest.fixture(scope="module")
def run(broker: Any, influx: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("flow-page")
    config_dir = tmp / "config"
    shutil.copytree(REPO / "config", config_dir, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (config_dir / "alerting.yaml").write_text(alerting_yaml(), encoding="utf-8")
    (config_dir / "sla.yaml").write_text(sla_yaml(), encoding="utf-8")
    settings = isolated_settings(broker.bootstrap, influx.url, influx.root.parent, config_dir=config_dir)
    receivers = yaml.safe_load((config_dir / "alerting.yaml").read_text(encoding="utf-8"))["receivers"]
    with http_receiver(b"{}") as (base, script):
        env = {**os.environ, **to_env(settings), "PYTHONUNBUFFERED": "1"}
        env.update({f"ORDERRADAR_ALERT_SECRET_{secret(name).upper()}": f"{base}/{name}" for name in receivers})
        argv = [sys.executable, "-m", "orderradar.cli", "--log-level", "WARNING", "worker", "--alert-tick", "1"]
        worker = ManagedProcess("worker", argv, tmp / "worker.log", env=env, cwd=REPO).start()
        start = float(int(time.time()) + 1)
        feed = Feed(settings, start, start + WARM_S, threading.Event())
        thread = threading.Thread(target=asyncio.run, args=(feed.run(),), daemon=True)
        thread.start()
        run = Run(feed.stop_at, script)

        def paged() -> list[dict[str, Any]]:
            if not worker.alive():
                raise AssertionError(f"worker exited:\n{worker.log_tail(40)}")
            if not thread.is_alive():
                raise AssertionError("the feed stopped")
            return [b for b in run.bodies() if b["kind"] == "page"]

        try:
            wait_until(paged, timeout=WARM_S + 150, interval=1.0, what="a page for the stopped hub")
            yield run
        except TimeoutError:
            raise AssertionError(
                f"no page; sent {feed.sent} events, notices {run.bodies()}\n{worker.log_tail(40)}"
            ) from None
        finally:
            feed.done.set()
            thread.join(timeout=30)
            worker.stop()


def test_a_stopped_hub_is_paged_at_p2_with_what_the_check_saw(run: Run) -> None:
    pages = [b for b in run.bodies() if b["kind"] == "page"]
    first = pages[0]
    assert first["tier"] == "P2" and first["labels"]["kind"] == "flow"
    assert first["labels"]["node"] == "HZ-3" and first["labels"]["region"] == "330000"
    # the window that opens it may still hold the last scans before the stop
    assert first["language"] == "en"
    assert re.fullmatch(r"\[P2 PAGE\] HZ-3 hub: scans (stopped|dropped to \d+% of normal)", first["title"])
    lines = first["text"].splitlines()
    stopped = next(line for line in lines if line.startswith("HZ-3 hub: scans at"))
    match = re.fullmatch(
        r"HZ-3 hub: scans at (\d+)% of normal for (\d+ s|\d+ min) \((\d+) in the last (5|10|15) s, (\d+) expected\);"
        r" ~(\d+) parcel scans behind \(estimate\)\.",  # the check's windows: a scaled 1, 2 or 3 min
        stopped,
    )
    assert match is not None, stopped
    share, window_s, expected, behind = int(match[1]), int(match[4]), int(match[5]), int(match[6])
    # 4 arrivals a second: ~4 per second of the window that fired; fewer than 100 held up, so
    # the flow rule (not an order-count rule) paged it
    assert share <= 20 and 2 * window_s <= expected <= 6 * window_s and 30 <= behind < 100
    held = next(line for line in lines if line.startswith("Orders held up"))
    held_match = re.fullmatch(
        r"Orders held up: ~(\d+) of (\d+) in flight there, value ~([\d,]+\.\d\d) \(estimate\)\.", held
    )
    assert held_match is not None, held
    orders, there = int(held_match[1]), int(held_match[2])
    assert orders == min(behind, there) and there >= 40  # HZ-3's parcels inside and on their way
    assert float(held_match[3].replace(",", "")) == pytest.approx(orders * 100.0)
    assert "Impact: 0 orders" not in first["text"]


def test_the_chat_is_told_in_chinese_and_nothing_was_paged_before_the_stop(run: Run) -> None:
    bodies = run.bodies()
    chat = [b for b in bodies if b["language"] == "zh-CN" and b["incident_ids"] == bodies[0]["incident_ids"]]
    assert chat, [b["receiver"] for b in bodies]
    assert re.search(r"分拨中心 HZ-3：(扫描中断|扫描量降至正常的 \d+%)$", chat[0]["title"])
    assert re.search(
        r"分拨中心 HZ-3：扫描量为正常的 \d+%，已持续 \d+ 秒（最近 \d+ 秒 \d+ 次.*约 \d+ 件包裹扫描滞后（估算）。",
        chat[0]["text"],
    )
    assert "影响：订单 0 单" not in chat[0]["text"]
    # 70 s of healthy traffic (and its warm-up) paged and told no one
    stop = datetime.fromtimestamp(run.stop_at, UTC)
    assert all(datetime.fromisoformat(b["created_at"]) >= stop for b in bodies)
    assert {b["labels"]["kind"] for b in bodies} == {"flow"}
