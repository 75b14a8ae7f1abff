"""Fixtures of the war-room browser tests: one stack per module (the worker with every stage
and the alerting agent, the web tier, a webhook receiver, the browser).

Starting Chromium, the worker and the web tier takes a while, so the browser tests share
them and each test checks one thing on top (they run in file order: the outage test
shows the alerts the ack and silence tests act on).

Nothing the war-room shows is injected: the worker turns simulated national traffic into
order updates, history, heatmap cells and KPIs, and three hub outages (``warroom.outages``)
into incidents and alerts, which its alerting agent pages to a real local webhook receiver.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from alerting_receivers import Script, http_receiver
from alerting_testkit import POLICY_YAML
from kafka import KafkaConsumer, TopicPartition
from stream_harness import influx_query

from config.settings import Settings
from dashboard.warroom.deps import build_deps
from dashboard.warroom.mount import MOUNT_PATH
from orderradar.devstack.broker import EmbeddedBroker
from orderradar.devstack.influx import LocalInflux, create_database
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from stream.contract import OrderEvent
from stream.kafka.admin import ensure_topics
from stream.topics import ORDER_EVENTS, changelog_topic
from warroom import outages, traffic
from warroom.harness import REPO, Browser, Feeder, WebTier, build_staff, start_worker

HISTORY_MINUTES = 30
#: The primary on-call is paged when an alert fires; the secondary this long after, unless
#: the alert was acked or silenced first (long enough for the browser to click).
ESCALATE_AFTER_S = 150
OUTAGES = 2
WEBHOOKS = ("ops_chat", "alice_pager", "bob_pager")


def alerting_policy() -> str:
    """The alerting tests' policy with webhook receivers, a 1 s group wait, the escalation
    above, and small hub incidents paging (P2 from 5 orders)."""
    text: str = POLICY_YAML.replace("group_wait: 30s", "group_wait: 1s")
    text = text.replace("escalate_after: 10m}", f"escalate_after: {ESCALATE_AFTER_S}s}}")
    text = text.replace("P2: {when: [{min_affected_orders: 100}", "P2: {when: [{min_affected_orders: 5}")
    for name in WEBHOOKS:
        dashed = name.replace("_", "-")
        text = text.replace(f"  {dashed}: {{type: log}}", f"  {dashed}: {{type: webhook, url_secret: {name}}}")
    assert text.count("type: webhook") == len(WEBHOOKS) and "min_affected_orders: 5}" in text
    return text


def worker_config(directory: Path) -> Path:
    """The shipped config with SLA windows in minutes and the policy above."""
    shutil.copytree(REPO / "config", directory, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    outages.fast_rules(directory / "sla.yaml")
    (directory / "alerting.yaml").write_text(alerting_policy(), encoding="utf-8")
    return directory


@dataclass
class Outage:
    """An alert the worker fired on a stalled hub's incident, and when the test saw the
    primary on-call paged for it (its escalation's next step is due by ``paged_by + ESCALATE_AFTER_S``)."""

    incident: dict[str, Any]
    alert_id: str
    paged_by: float


@dataclass
class LiveStack:
    settings: Settings
    web: WebTier
    feeder: Feeder
    receiver: Script
    worker: ManagedProcess
    browser: Browser
    #: Every event fed to the worker (simulated national traffic and the hub outages).
    events: list[OrderEvent]
    #: The hub outages as the worker reported them, in the order their alerts fired.
    outages: list[Outage]
    #: Stalled hubs the worker has named as an incident's root cause so far.
    seen_hubs: set[str] = field(default_factory=set)

    def pages(self, receiver: str, alert_id: str, kind: str = "page") -> list[dict[str, Any]]:
        """Notifications of ``kind`` the webhook receiver got for one alert."""
        out = []
        for request in list(self.receiver.requests):
            body = orjson.loads(request["body"])
            if (
                request["path"].strip("/").split("/")[0] == receiver
                and body.get("alert_id") == alert_id
                and body.get("kind") == kind
            ):
                out.append(body)
        return out

    def alert(self, alert_id: str) -> dict[str, Any]:
        """The alert as the gateway folded it from the worker's ``alerts`` records."""
        return self.web.gateway.warroom.get("alert", alert_id) or {}

    def check_worker(self) -> None:
        assert self.worker.alive(), f"worker died:\n{self.worker.log_tail(40)}"


def module_settings(broker: EmbeddedBroker, influx: LocalInflux, config_dir: Path | None = None) -> Settings:
    tag = uuid.uuid4().hex[:10]
    extra: dict[str, Any] = {"config_dir": config_dir} if config_dir is not None else {}
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        topic_prefix=f"w{tag}-",
        influx_url=influx.url,
        influx_db=f"w_{tag}",
        data_dir=influx.root.parent,
        **extra,
    )
    ensure_topics(settings)
    create_database(settings.influx_url, settings.influx_db)
    return settings


@pytest.fixture(scope="module")
def live_stack(
    broker: EmbeddedBroker, influx: LocalInflux, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    settings = module_settings(broker, influx, worker_config(tmp_path_factory.mktemp("warroom") / "config"))
    with ExitStack() as stack:
        base, script = stack.enter_context(http_receiver(b"{}"))
        worker = start_worker(
            settings, tmp_path_factory.mktemp("worker") / "worker.log", {name: f"{base}/{name}" for name in WEBHOOKS}
        )
        stack.callback(worker.stop)
        deps = build_deps(settings, prefix=MOUNT_PATH + "/")
        stack.callback(deps.history.close)  # its InfluxDB connections (after web.stop: callbacks run in reverse)
        web = WebTier(settings, build_staff(), deps).start()
        stack.callback(web.stop)
        feeder = Feeder(settings)
        stack.callback(feeder.close)
        browser = Browser()
        stack.callback(browser.close)
        now = traffic.utc_now()
        # Four hours of the hub network, its hubs stalling from the 100th minute on, then the
        # last half hour of national traffic (each in event-time order, as sources send).
        outage = outages.hub_outages(
            now - timedelta(hours=4), minutes=235, outage_after=100, copies=OUTAGES, stagger=20
        )
        for sent in outage:
            feeder.send(ORDER_EVENTS, sent.event.order_id, sent.value, int(sent.received.timestamp() * 1000))
        emissions = traffic.simulate(now, minutes=HISTORY_MINUTES)
        for emission in emissions:
            feeder.send(ORDER_EVENTS, emission.event.order_id, emission.value)
        feeder.flush()
        events = [e.event for e in emissions] + [s.event for s in outage]
        live = LiveStack(settings, web, feeder, script, worker, browser, events, [])
        # The page is opened once the worker has worked through the backlog (on a busy
        # machine a page flooded with updates while it loads is slow to settle).
        fired = wait_until(
            lambda: fired_outages(live), 240, interval=0.5, what="an incident, an alert and a page per stalled hub"
        )
        live.outages.extend(cast("list[Outage]", fired))  # what fired_outages returned
        wait_until(
            lambda: (
                (
                    web.gateway.warroom.get("kpis", "national") is not None
                    and len(web.gateway.warroom.items("heatmap")) >= 20
                )
                or not worker.alive()
            ),
            60,
            what="the worker's heatmap and KPIs in the gateway",
        )
        live.check_worker()
        browser.login(web.warroom_url, "manager")
        yield live


def hubs_in_incident_history(settings: Settings) -> set[str]:
    """Hubs named as an incident's root cause in any of its recorded versions."""
    hubs: set[str] = set()
    for _time, cause in influx_query(settings, 'SELECT "root_cause" FROM "incidents"'):
        for part in str(cause).split(","):
            name, _, value = part.strip().partition("=")
            if name == "hub":
                hubs.add(value)
    return hubs


def fired_outages(stack: LiveStack) -> list[Outage]:
    """The first ``OUTAGES`` alerts, in the order they fired, once the worker has opened an
    incident on each stalled hub and paged the primary on-call (alice) for them (else nothing).

    (An incident's root cause may later widen, from the hub to the stage it stalls.)"""
    stack.check_worker()
    gateway = stack.web.gateway.warroom
    hubs = {
        str(hub)
        for i in gateway.items("incident")
        if isinstance(i, dict) and (hub := (i.get("root_cause") or {}).get("hub"))
    }
    # An incident read from a backlog can widen (hub -> the stage it stalls) within one burst
    # of updates, between two polls: its earlier versions are in InfluxDB's ``incidents``.
    hubs |= hubs_in_incident_history(stack.settings)
    stack.seen_hubs.update(hubs & set(outages.down_hubs(OUTAGES)))
    seen = time.time()
    paged = [a for a in gateway.items("alert") if stack.pages("alice_pager", a["alert_id"])]
    if len(stack.seen_hubs) < OUTAGES or len(paged) < OUTAGES:
        return []
    paged.sort(key=lambda a: (a["first_at"], a["alert_id"]))
    return [Outage(gateway.get("incident", a["incident_ids"][0]) or {}, a["alert_id"], seen) for a in paged[:OUTAGES]]


@pytest.fixture(scope="module")
def outages_fired(live_stack: LiveStack) -> list[Outage]:
    return live_stack.outages


def last_agent_save(settings: Settings) -> float | None:
    """When the alerting agent last saved its engine (the wall-clock time of the newest
    record of its changelog, which it writes after every tick and command), else ``None``."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partition = TopicPartition(changelog_topic(settings, "alerting"), 0)
        consumer.assign([partition])
        end = consumer.end_offsets([partition])[partition]
        if not end:
            return None
        consumer.seek(partition, end - 1)
        for records in consumer.poll(timeout_ms=5000).values():
            return float(max(r.timestamp for r in records)) / 1000
        return None
    finally:
        consumer.close()


def wait_for_worker(stack: LiveStack, timeout: float = 90.0) -> None:
    """Until the worker has published order updates and written the per-minute series
    (throughput, and the delay gauges by region)."""
    from dashboard.warroom.history import InfluxHistory, TimeWindow

    window = TimeWindow.last(timedelta(hours=2), traffic.utc_now() + timedelta(minutes=1))

    def written() -> bool:
        return (
            len(stack.web.gateway.orders) > 0
            and not history.throughput(window).empty
            and not history.delay_rate(window, "region").empty
        )

    with InfluxHistory(stack.settings.influx_url, stack.settings.influx_db) as history:
        wait_until(lambda: written() or not stack.worker.alive(), timeout, interval=0.5, what="the worker's output")
    stack.check_worker()
