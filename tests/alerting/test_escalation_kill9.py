"""A real worker killed (``kill -9``) in the middle of an escalation resumes it after restart.

(It also checks that a record the alerting agent cannot read is dead-lettered, not dropped.)

The worker runs with every stage and the alerting agent, against the real broker and
InfluxDB, with webhook receivers on a real local HTTP server. A hub-stall incident opens
at P2: the primary on-call (alice) is paged; the worker is killed before the policy's
escalation delay; the restarted worker restores the engine from its changelog and pages
the secondary (bob) exactly once, after the delay. At most one duplicate per failover.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from alerting_receivers import Script, http_receiver
from alerting_testkit import POLICY_YAML, delay_record
from stream_harness import read_topic

from config.settings import Settings
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from stream.core import dlq
from stream.topics import ALERT_INPUTS, ALERTS, ORDER_EVENTS_DLQ
from warroom import harness

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ESCALATE_AFTER_S = 8
RECEIVERS = ("ops_chat", "alice_pager", "bob_pager")


def policy_text() -> str:
    text = POLICY_YAML.replace("group_wait: 30s", "group_wait: 1s")
    text = text.replace("escalate_after: 10m}", f"escalate_after: {ESCALATE_AFTER_S}s}}")
    for name in RECEIVERS:
        dashed = name.replace("_", "-")
        text = text.replace(f"  {dashed}: {{type: log}}", f"  {dashed}: {{type: webhook, url_secret: {name}}}")
    assert text.count("type: webhook") == len(RECEIVERS)
    return text


def start_worker(settings: Settings, base_url: str, log_path: Path) -> ManagedProcess:
    return harness.start_worker(
        settings, log_path, {name: f"{base_url}/{name}" for name in RECEIVERS}, worker_log_level="info"
    )


def hub_incident(now: datetime) -> dict[str, object]:
    """A hub's delay incident (150 orders: P2, pages) as the delays stage forwards it."""
    root_cause, title = {"hub": "SHA-HUB-01", "region": "north"}, "Shanghai hub stopped scanning"
    return delay_record("inc-hub-sha-01", root_cause, orders=150, skus=320, at=now, dimension="hub", title=title)


async def produce_one(settings: Settings, topic: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, partition=0)
    finally:
        await producer.stop()


def topic_values(settings: Settings, topic: str) -> list[bytes]:
    return [r.value for r in asyncio.run(read_topic(settings, topic))]


def pages(script: Script) -> Counter[str]:
    return Counter(str(r["path"]).strip("/").split("/")[0] for r in script.requests)


def test_kill_9_mid_escalation_then_restart_pages_the_next_step_once(stack_settings: Settings, tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(REPO / "config", config_dir, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (config_dir / "alerting.yaml").write_text(policy_text(), encoding="utf-8")
    settings = stack_settings.model_copy(update={"config_dir": config_dir})

    with http_receiver(b"{}") as (base, script):
        worker = start_worker(settings, base, tmp_path / "worker-0.log")
        try:
            inputs = settings.topic(ALERT_INPUTS)
            asyncio.run(produce_one(settings, inputs, b"garbage", b"{not json"))
            opened = datetime.now(UTC)
            record = orjson.dumps(hub_incident(opened))
            asyncio.run(produce_one(settings, inputs, b"inc-hub-sha-01", record))

            def alice_paged() -> bool:
                if not worker.alive():
                    raise AssertionError(f"worker exited:\n{worker.log_tail(40)}")
                return pages(script)["alice_pager"] >= 1

            wait_until(alice_paged, timeout=120, interval=0.2, what="the primary on-call paged")
            assert pages(script)["bob_pager"] == 0, "escalated before the delay"
            worker.kill9()  # mid-escalation: bob is due ESCALATE_AFTER_S after alice's page
            killed_at = datetime.now(UTC)
            worker = start_worker(settings, base, tmp_path / "worker-1.log")

            def bob_paged() -> bool:
                if not worker.alive():
                    raise AssertionError(f"restarted worker exited:\n{worker.log_tail(40)}")
                return pages(script)["bob_pager"] >= 1

            wait_until(bob_paged, timeout=150, interval=0.2, what="the secondary on-call paged after restart")

            # The delivery of bob's page is saved and published after the send; once it is on
            # the alerts topic, a further duplicate could only come from another failover.
            def bob_delivery_recorded() -> list[dict[str, object]]:
                records = [orjson.loads(v) for v in topic_values(settings, settings.topic(ALERTS))]
                done = [r for r in records if r["event"] == "delivered" and r["receiver"] == "bob-pager"]
                return records if done else []

            records = wait_until(bob_delivery_recorded, timeout=60, interval=0.5, what="bob's delivery recorded")
        finally:
            worker.stop()

    counts = pages(script)
    assert counts["bob_pager"] == 1, counts
    assert 1 <= counts["alice_pager"] <= 2, counts  # at most one duplicate per failover
    bob = next(r for r in script.requests if str(r["path"]).startswith("/bob_pager"))
    assert bob["headers"].get("Idempotency-Key")
    escalations = [r for r in records if r["event"] == "escalated"]
    assert sorted({int(r["step"]) for r in escalations}) == [0, 1], escalations
    step_1 = next(r for r in escalations if r["step"] == 1)
    # the second step came from the restarted worker, no earlier than the policy's delay
    step_1_at = datetime.fromisoformat(str(step_1["at"]))
    assert step_1_at >= killed_at
    assert (step_1_at - opened).total_seconds() >= ESCALATE_AFTER_S

    letters = [dlq.decode(v) for v in topic_values(settings, settings.topic(ORDER_EVENTS_DLQ))]
    # one record, dead-lettered by the first worker and again by its successor if the
    # first died before committing it (at-least-once; the source coordinates tell them apart)
    assert {(x.value, x.code, x.source.topic, x.source.offset) for x in letters} == {
        (b"{not json", "not_json", inputs, 0)
    }
    assert 1 <= len(letters) <= 2
