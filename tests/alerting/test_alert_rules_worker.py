"""Every tier rule and every inhibition rule of ``config/alerting.yaml`` fires in the worker.

One worker with every stage and the alerting agent runs against the real broker and
InfluxDB; order events (:mod:`alert_rule_scenarios`) stall one hub per rule, with order
values, VIP flags, penalty attributes and promises that only that rule turns into its
tier. The incidents travel from the delays stage to the agent, and the notifications reach
a real webhook receiver: each rule's hub is told at the rule's tier (paged for P1/P2, the
manager told for P1), and the hub under a declared disruption zone is inhibited.

The rules are read from the shipped file: a rule without a scenario fails its test. The
receivers are rewritten to webhooks (the real ones need robot keys) and the grouping
waits shortened; tiers and inhibition rules are the shipped ones. The SLA rules are
scaled to minutes and group by hub only, so each stalled hub is one incident.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from alert_rule_scenarios import INHIBIT_SCENARIOS, TIER_SCENARIOS, ZONE_BOX, ZONE_TARGET, condition_key, traffic
from alerting_receivers import Script, http_receiver
from stream_harness import read_topic

from config.settings import Settings, to_env
from orderradar.devstack.isolation import isolated_settings
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from stream.core.control_commands import DisruptionCreate
from stream.core.control_commands import ZoneDeclaration as ZoneCommand
from stream.core.flow_incidents import KIND as FLOW_KIND
from stream.topics import ALERTS, CONTROL, ORDER_EVENTS, ORDER_INCIDENTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SHIPPED = yaml.safe_load((REPO / "config" / "alerting.yaml").read_text(encoding="utf-8"))
#: The flow rules (``*_flow_*``: a stopped hub) page a flow incident: test_flow_page_worker.py fires them.
TIER_RULES = [
    (tier, cond)
    for tier, level in SHIPPED["tiers"]["levels"].items()
    for cond in level.get("when", [])
    if not any("_flow_" in key for key in cond)
]
INHIBIT_RULES = SHIPPED.get("inhibit_rules", [])
RANK = {"P4": 0, "P3": 1, "P2": 2, "P1": 3}


def alerting_yaml() -> str:
    """The shipped policy with every receiver a webhook and the grouping waits in seconds."""
    policy = yaml.safe_load((REPO / "config" / "alerting.yaml").read_text(encoding="utf-8"))
    policy["receivers"] = {name: {"type": "webhook", "url_secret": secret(name)} for name in policy["receivers"]}
    routes = [policy["route"], *policy["route"].get("routes", [])]
    for route in routes:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = "1s"
    return yaml.safe_dump(policy, allow_unicode=True, sort_keys=False)


def secret(receiver: str) -> str:
    return "hook_" + receiver.replace("-", "_")


def sla_yaml() -> str:
    rules = yaml.safe_load((REPO / "config" / "sla.yaml").read_text(encoding="utf-8"))
    rules["stages"]["in_transit"]["within"] = "40m"
    rules["overrides"] = [o for o in rules.get("overrides", []) if o.get("stage") != "in_transit"]
    rules["incidents"].update(
        {"eval_every": "1m", "window": "4h", "baseline": "3h", "resolve_after": "30m", "dimensions": ["hub"]}
    )
    return yaml.safe_dump(rules, allow_unicode=True)


@dataclass
class Run:
    settings: Settings
    script: Script
    start: datetime
    incidents: dict[str, dict[str, Any]]  # hub -> its last incident record
    alerts: list[dict[str, Any]]

    def notices(self, incident_id: str) -> list[dict[str, Any]]:
        out = []
        for request in self.script.requests:
            body = json.loads(request["body"])
            if incident_id in body.get("incident_ids", ()):
                out.append(body)
        return out


async def _produce(settings: Settings, start: datetime) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        zone = DisruptionCreate(
            actor="manager",
            at=start,
            disruption_id="dz-jiaxing",
            zone=ZoneCommand(
                name="Jiaxing flood", geometry=ZONE_BOX, reason="typhoon", ends_at=start + timedelta(hours=12)
            ),
        )
        await producer.send_and_wait(
            settings.topic(CONTROL), orjson.dumps(zone.to_record()), key=b"dz-jiaxing", partition=0
        )
        futures = []
        for event in traffic(start):
            received = event.event_time + timedelta(seconds=2)
            futures.append(
                await producer.send(
                    settings.topic(ORDER_EVENTS),
                    event.to_json(),
                    key=event.order_id.encode(),
                    timestamp_ms=int(received.timestamp() * 1000),
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _values(settings: Settings, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in asyncio.run(read_topic(settings, topic)) if r.value]


def _by_hub(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("kind") == FLOW_KIND:
            continue  # a stalled hub's scans also stop: its flow-drop incident counts events, not orders
        hub = (record.get("root_cause") or {}).get("hub") or (record.get("root_cause") or {}).get("area")
        if hub:
            out[str(hub)] = record
    return out


@pytest.fixture(scope="module")
def run(broker: Any, influx: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("alert-rules")
    config_dir = tmp / "config"
    shutil.copytree(REPO / "config", config_dir, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (config_dir / "alerting.yaml").write_text(alerting_yaml(), encoding="utf-8")
    (config_dir / "sla.yaml").write_text(sla_yaml(), encoding="utf-8")
    settings = isolated_settings(broker.bootstrap, influx.url, influx.root.parent, config_dir=config_dir)
    start = datetime.now(UTC).replace(microsecond=0)
    with http_receiver(b"{}") as (base, script):
        env = {**os.environ, **to_env(settings), "PYTHONUNBUFFERED": "1"}
        env.update(
            {f"ORDERRADAR_ALERT_SECRET_{secret(name).upper()}": f"{base}/{name}" for name in SHIPPED["receivers"]}
        )
        argv = [sys.executable, "-m", "orderradar.cli", "--log-level", "WARNING", "worker", "--alert-tick", "1"]
        worker = ManagedProcess("worker", argv, tmp / "worker.log", env=env, cwd=REPO).start()
        try:
            asyncio.run(_produce(settings, start))
            hubs = {sc.hub for sc in TIER_SCENARIOS.values()} | {"HUB-Z", "dz-jiaxing"}

            def all_incidents() -> dict[str, dict[str, Any]]:
                if not worker.alive():
                    raise AssertionError(f"worker exited:\n{worker.log_tail(40)}")
                found = _by_hub(_values(settings, settings.topic(ORDER_INCIDENTS)))
                return found if hubs <= found.keys() else {}

            def settled() -> list[dict[str, Any]]:
                """Every scenario's alert notified at its tier, the zone's target inhibited and the zone told."""
                found = all_incidents()
                if not found:
                    return []
                alerts = _values(settings, settings.topic(ALERTS))
                r = Run(settings, script, start, found, alerts)
                for (tier, _), sc in TIER_SCENARIOS.items():
                    if _top_tier(r, sc.hub) != tier:
                        return []
                if not any(
                    a["event"] == "inhibited" and found["HUB-Z"]["incident_id"] in a["incident_ids"] for a in alerts
                ):
                    return []
                if not r.notices(found["dz-jiaxing"]["incident_id"]):
                    return []  # the zone is told a moment after its target is muted
                return alerts

            try:
                wait_until(all_incidents, timeout=150, interval=1.0, what="an incident per scenario hub")
                wait_until(settled, timeout=90, interval=1.0, what="every scenario alerted at its tier")
            except TimeoutError:
                found = _by_hub(_values(settings, settings.topic(ORDER_INCIDENTS)))
                summary = {h: (r["counts"]["orders"], r.get("impact"), r.get("labels")) for h, r in found.items()}
                r = Run(settings, script, start, found, [])
                tiers = {sc.hub: _top_tier(r, sc.hub) for sc in TIER_SCENARIOS.values()}
                raise AssertionError(f"incidents: {summary}\ntiers: {tiers}\n{worker.log_tail(30)}") from None
            yield Run(settings, script, start, all_incidents(), _values(settings, settings.topic(ALERTS)))
        finally:
            worker.stop()


def _top_tier(run: Run, hub: str) -> str | None:
    record = run.incidents.get(hub)
    if record is None:
        return None
    tiers = [n["tier"] for n in run.notices(record["incident_id"])]
    return max(tiers, key=RANK.__getitem__) if tiers else None


@pytest.mark.parametrize("tier, condition", TIER_RULES, ids=[f"{t}-{condition_key(c)}" for t, c in TIER_RULES])
def test_each_tier_rule_pages_its_hub_at_its_tier(run: Run, tier: str, condition: dict[str, Any]) -> None:
    scenario = TIER_SCENARIOS.get((tier, condition_key(condition)))
    assert scenario is not None, f"no scenario for the tier rule {tier} {condition}: add one to alert_rule_scenarios"
    record = run.incidents[scenario.hub]
    impact = record["impact"]
    # the impact fields the rule reads came with the events
    orders = record["counts"]["orders"]  # as last published (it moves in steps of a tenth)
    assert 8 <= orders <= scenario.orders
    assert impact["order_value"] == pytest.approx(orders * scenario.value)
    assert impact["vip_orders"] == min(scenario.vip, orders)  # the first orders are the VIP ones
    assert impact["penalty_orders"] == min(scenario.penalty, orders)
    assert record["labels"]["region"] == scenario.region and record["labels"]["warehouse"] == "WH-SZ"
    notices = run.notices(record["incident_id"])
    assert max((n["tier"] for n in notices), key=RANK.__getitem__) == tier
    assert all(n["labels"]["node"] == scenario.hub and n["labels"]["region"] == scenario.region for n in notices)
    kinds = {n["kind"] for n in notices}
    level = SHIPPED["tiers"]["levels"][tier]
    assert ("page" in kinds) == bool(level.get("page")), kinds
    told = {n.get("user") for n in notices}
    for target in level.get("also_notify", []):
        assert target["user"] in told, (target, told)


@pytest.mark.parametrize("rule", INHIBIT_RULES, ids=[r["source_matchers"][0] for r in INHIBIT_RULES])
def test_each_inhibition_rule_mutes_its_target(run: Run, rule: dict[str, Any]) -> None:
    key = (rule["source_matchers"][0], rule["target_matchers"][0], tuple(rule.get("equal", ())))
    target = INHIBIT_SCENARIOS.get(key)
    assert target is not None, f"no scenario for the inhibition rule {rule}: add one to alert_rule_scenarios"
    assert target is ZONE_TARGET
    source, muted = run.incidents["dz-jiaxing"], run.incidents[target.hub]
    for name in rule.get("equal", ()):
        assert source["labels"][name] == muted["labels"][name] == target.region
    # the zone is told; the hub it explains is recorded as inhibited and told to no one
    assert run.notices(source["incident_id"])
    assert run.notices(muted["incident_id"]) == []
    inhibited = [a for a in run.alerts if a["event"] == "inhibited" and muted["incident_id"] in a["incident_ids"]]
    assert inhibited and source["incident_id"] in inhibited[0]["detail"]
    # without the zone it would have been told: its impact calls for P3
    assert 10 <= muted["counts"]["orders"] <= target.orders
