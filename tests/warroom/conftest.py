"""Fixtures of the war-room browser tests: one stack per module (worker, web tier, browser).

Starting Chromium, the worker and the web tier takes a while, so the browser tests share
them and each test checks one thing on top (they run in file order: the outage test
publishes what the ack test acts on).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from dataclasses import dataclass
from typing import Any

import pytest

from config.settings import Settings
from dashboard.warroom.deps import build_deps
from dashboard.warroom.mount import MOUNT_PATH
from orderradar.devstack.broker import EmbeddedBroker
from orderradar.devstack.influx import LocalInflux, create_database
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from orderradar.simulator.emission import Emission
from orderradar.simulator.network import Node
from stream.topics import ALERTS, ORDER_EVENTS, ORDER_INCIDENTS, ORDER_UPDATES, WARROOM_UPDATES, ensure_topics
from warroom import traffic, worker_core
from warroom.harness import AlertingStandIn, Browser, Feeder, WebTier, build_staff, start_worker


#: Run the real Faust worker on the simulated events (order updates, history, partition
#: summaries); off while ``stream.worker`` cannot start in this tree.
USE_WORKER = True
HISTORY_MINUTES = 30


@dataclass
class LiveStack:
    settings: Settings
    web: WebTier
    feeder: Feeder
    alerting: AlertingStandIn
    worker: ManagedProcess | None
    browser: Browser
    emissions: list[Emission]
    heatmap: dict[str, dict[str, object]]


def module_settings(broker: EmbeddedBroker, influx: LocalInflux) -> Settings:
    tag = uuid.uuid4().hex[:10]
    settings = Settings(kafka_bootstrap=broker.bootstrap, topic_prefix=f"w{tag}-", influx_url=influx.url,
                        influx_db=f"w_{tag}", data_dir=influx.root.parent)
    ensure_topics(settings)
    create_database(settings.influx_url, settings.influx_db)
    return settings


@pytest.fixture(scope="module")
def live_stack(broker: EmbeddedBroker, influx: LocalInflux, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    settings = module_settings(broker, influx)
    worker = start_worker(settings, tmp_path_factory.mktemp("worker") / "worker.log") if USE_WORKER else None
    web = WebTier(settings, build_staff(), build_deps(settings, prefix=MOUNT_PATH + "/")).start()
    feeder = Feeder(settings)
    alerting = AlertingStandIn(settings, feeder).start()
    browser = Browser()
    try:
        now = traffic.utc_now()
        emissions = traffic.simulate(now, minutes=HISTORY_MINUTES)
        events = [e.event for e in emissions]
        delays = worker_core.delay_gauge_lines(events, now, HISTORY_MINUTES, settings.partitions)
        if worker is not None:
            for emission in emissions:
                feeder.send(ORDER_EVENTS, emission.event.order_id, emission.value)
            worker_core.write_lines(settings, delays)
        else:
            core = worker_core.run(emissions, settings.partitions)
            for order_id, snapshot in core.snapshots.items():
                feeder.send(ORDER_UPDATES, order_id, snapshot)
            for summary in core.summaries:
                feeder.send(WARROOM_UPDATES, f"partition-{summary['partition']}", summary)
            worker_core.write_lines(settings, core.lines + delays)
        cells = traffic.heatmap(events, now)
        for cell, item in cells.items():
            feeder.send(WARROOM_UPDATES, cell, item)
        feeder.send(WARROOM_UPDATES, "national", traffic.kpis(cells, now))
        feeder.flush()
        wait_until(lambda: len(web.gateway.warroom.items("heatmap")) == len(cells), 30, what="heatmap in the gateway")
        browser.login(web.warroom_url, "manager")
        yield LiveStack(settings, web, feeder, alerting, worker, browser, emissions, cells)
    finally:
        browser.close()
        alerting.stop()
        feeder.close()
        web.stop()
        if worker is not None:
            worker.stop()


@dataclass
class Outage:
    hub: Node
    incident: dict[str, Any]
    alert_id: str
    published_at: float


@pytest.fixture(scope="module")
def outage(live_stack: LiveStack) -> Outage:
    """A hub stops scanning: its cells fill with stalled lines, an incident opens and an
    alert fires (published once per module, as the worker's later stages would)."""
    feeder = live_stack.feeder
    events = [e.event for e in live_stack.emissions]
    hub = traffic.busiest_hub(events)
    now = traffic.utc_now()
    cells = traffic.heatmap(events, now, stalled_near=hub)
    incident = traffic.hub_incident(hub, traffic.orders_at(events, hub), now, traffic.outage_stalled(cells, hub))
    alert = traffic.fired_alert(incident, hub, now)
    published_at = time.monotonic()
    for cell, item in cells.items():
        feeder.send(WARROOM_UPDATES, cell, item)
    feeder.send(WARROOM_UPDATES, "national", traffic.kpis(cells, now))
    feeder.send(ORDER_INCIDENTS, incident["incident_id"], incident)
    feeder.send(ALERTS, alert.alert_id, alert.to_dict())
    feeder.flush()
    return Outage(hub, incident, alert.alert_id, published_at)


def wait_for_worker(stack: LiveStack, timeout: float = 90.0) -> None:
    """Until the worker (or its in-process stand-in) has published order updates and written
    the per-minute series: it joins its consumer group while the browser loads the page."""
    from dashboard.warroom.history import InfluxHistory, TimeWindow

    worker = stack.worker
    window = TimeWindow.last(timedelta(hours=2), traffic.utc_now() + timedelta(minutes=1))
    with InfluxHistory(stack.settings.influx_url, stack.settings.influx_db) as history:
        wait_until(lambda: (len(stack.web.gateway.orders) > 0 and not history.throughput(window).empty)
                   or (worker is not None and not worker.alive()), timeout, what="the worker's output")
    if worker is not None:
        assert worker.alive(), f"worker died:\n{worker.log_tail()}"
