"""War-room time travel and incidents, through the running system: a hub outage (hours of
traffic, SLA timers scaled to minutes): the traffic before the outage is on ``order-events``
when the real worker starts, the rest follows once the worker wrote its first war-room minute;
the worker opens an incident naming the hub. In the war-room, a minute before the incident
opened shows no incident and a minute after shows it, named by the hub the test took down."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from stream_harness import influx_query, start_worker

from config.settings import Settings
from dashboard.warroom import ids
from dashboard.warroom.deps import build_deps
from dashboard.warroom.mount import MOUNT_PATH
from orderradar.devstack.broker import EmbeddedBroker
from orderradar.devstack.influx import LocalInflux
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from stream_stages.stages_scenario import DOWN_HUB, fast_rules, outage_traffic, produce_sent
from warroom.conftest import module_settings
from warroom.harness import Browser, WebTier, build_staff, int_attribute

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLIDER_THUMB = "#travel-slider [role=slider]"


OUTAGE_AFTER_MIN = 100


def outage_parts() -> tuple[list[Any], list[Any]]:
    """The traffic before the hub goes down, and the rest."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4)
    down = start + timedelta(minutes=OUTAGE_AFTER_MIN)
    records = list(outage_traffic(start, minutes=235, outage_after=OUTAGE_AFTER_MIN))
    return [s for s in records if s.received < down], [s for s in records if s.received >= down]


def history_points(settings: Settings) -> bool:
    """The worker wrote the war-room's minute points (its history has begun)."""
    return bool(influx_query(settings, 'SELECT first("orders") FROM "delays_orders"'))


class Stack:
    def __init__(self, settings: Settings, worker: ManagedProcess, web: WebTier, browser: Browser) -> None:
        self.settings, self.worker, self.web, self.browser = settings, worker, web, browser

    def incident(self) -> dict[str, object] | None:
        """The hub incident as the web tier received it (to pick the minutes to look at)."""
        found = [i for i in self.web.gateway.warroom.items("incident") if DOWN_HUB in str(i.get("root_cause"))]
        return found[0] if found else None

    def incident_points(self) -> bool:
        return bool(influx_query(self.settings, 'SELECT count("skus") FROM "incidents"'))

    def show_minute(self, minute: int) -> None:
        """Home, then one arrow press a minute (the keyboard path of the slider)."""
        thumb = self.browser.driver.find_element(By.CSS_SELECTOR, SLIDER_THUMB)
        self.browser.wait(
            lambda _d: int_attribute(thumb, "aria-valuemin") < minute,
            30,
            "the slider reaching back to the incident",
        )
        low = int_attribute(thumb, "aria-valuemin")
        thumb.send_keys(Keys.HOME, *([Keys.ARROW_RIGHT] * (minute - low)))
        self.browser.wait(lambda _d: thumb.get_attribute("aria-valuenow") == str(minute), 30, f"the slider at {minute}")


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, influx: LocalInflux, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = module_settings(broker, influx)
    config_dir = tmp_path_factory.mktemp("config")
    shutil.copytree(settings.config_dir, config_dir, dirs_exist_ok=True)
    fast_rules(config_dir / "sla.yaml")
    settings = settings.model_copy(update={"config_dir": config_dir})
    before, after = outage_parts()
    asyncio.run(produce_sent(settings, before))
    worker = start_worker(settings, tmp_path_factory.mktemp("worker") / "worker.log", core_only=False)
    deps = build_deps(settings, prefix=MOUNT_PATH + "/")
    web = WebTier(settings, build_staff(), deps).start()
    browser = Browser()
    try:
        browser.login(web.warroom_url, "manager")
        # The rest once the war-room's history has begun, as in a live system: an incident
        # opened by a backlog read at once has no minute before it to travel to.
        try:
            wait_until(lambda: history_points(settings), 180, interval=0.5, what="the war-room's first minute points")
        except TimeoutError:
            raise AssertionError(worker.log_tail(40)) from None
        asyncio.run(produce_sent(settings, after))
        yield Stack(settings, worker, web, browser)
    finally:
        browser.close()
        web.stop()
        deps.history.close()
        worker.stop()


def test_incidents_as_of_before_and_after_the_hub_incident_opened(stack: Stack) -> None:
    try:
        wait_until(stack.incident, 180, interval=0.5, what="the hub incident in the web tier")
        wait_until(stack.incident_points, 60, interval=0.5, what="incident points in InfluxDB")
    except TimeoutError:
        raise AssertionError(stack.worker.log_tail(40)) from None
    incident = stack.incident()
    assert incident is not None
    opened = datetime.fromisoformat(str(incident["opened_at"]).replace("Z", "+00:00"))
    opened_minute = int(opened.timestamp() // 60)
    rows = stack.browser.driver

    stack.show_minute(opened_minute + 1)
    stack.browser.wait(
        lambda _d: DOWN_HUB in stack.browser.text(ids.INCIDENT_TABLE),
        30,
        "the hub incident as of a minute after it opened",
    )
    assert rows.find_elements(By.CSS_SELECTOR, f"#{ids.INCIDENT_TABLE} .incident-row")

    # A minute before it opened the hub's incident is gone (another incident may be open then).
    stack.show_minute(opened_minute - 1)
    try:
        stack.browser.wait(
            lambda _d: DOWN_HUB not in stack.browser.text(ids.INCIDENT_TABLE),
            30,
            "no hub incident as of a minute before it opened",
        )
    except Exception:
        raise AssertionError(f"as of {opened_minute - 1}: {stack.browser.text(ids.INCIDENT_TABLE)!r}") from None

    rows.find_element(By.ID, "travel-live").click()
    stack.browser.wait(lambda _d: DOWN_HUB in stack.browser.text(ids.INCIDENT_TABLE), 30, "the incident live again")
