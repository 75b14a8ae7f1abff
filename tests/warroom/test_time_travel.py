"""War-room time travel through the running system: the real worker (all stages) writes
each minute to InfluxDB, the web tier reads it back, headless Chromium moves the slider.

Orders are placed at a Hangzhou warehouse (phase A); once the war-room shows them live and
a minute has passed, some are cancelled and new ones are placed in Shanghai (phase B).
Set to A's minute, the KPIs, the map and the incidents show A's values (counted here from
the events sent) and live updates are held back; "live" shows the current values again.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import h3
import pytest
import yaml
from kafka.partitioner.default import murmur2
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from stream_harness import influx_query, start_worker

from config.settings import Settings
from dashboard.warroom import ids
from dashboard.warroom.deps import build_deps
from dashboard.warroom.i18n import both
from dashboard.warroom.mount import MOUNT_PATH
from orderradar.devstack.broker import EmbeddedBroker
from orderradar.devstack.influx import LocalInflux
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from stream.contract import OrderEvent, Status
from stream.topics import ORDER_EVENTS
from warroom.conftest import module_settings
from warroom.harness import TIMEZONE, Browser, Feeder, WebTier, build_staff, int_attribute

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HANGZHOU = ("WH-HZ", 30.27, 120.15)
SHANGHAI = ("WH-SH", 31.23, 121.47)
PER_PARTITION = 2  # every partition gets orders in each phase, so the watermark moves on
CANCELLED = 3
MAP_RES = 3  # the national map's hexagons
SLIDER_THUMB = "#travel-slider [role=slider]"


def _partition(order_id: str, partitions: int) -> int:
    # The producer's default partitioner (murmur2 of the key), as kafka-python applies it.
    return (int(murmur2(order_id.encode())) & 0x7FFFFFFF) % partitions


def order_ids(prefix: str, partitions: int) -> list[str]:
    """``PER_PARTITION`` order ids landing in each partition."""
    found: dict[int, list[str]] = {p: [] for p in range(partitions)}
    n = 0
    while any(len(v) < PER_PARTITION for v in found.values()):
        order_id = f"{prefix}{n:05d}"
        bucket = found[_partition(order_id, partitions)]
        if len(bucket) < PER_PARTITION:
            bucket.append(order_id)
        n += 1
    return sorted(o for v in found.values() for o in v)


def placed(order_id: str, at: datetime, where: tuple[str, float, float]) -> list[OrderEvent]:
    warehouse, lat, lon = where
    common: dict[str, Any] = {
        "order_id": order_id,
        "sku": "SKU1",
        "source": "tt",
        "warehouse": warehouse,
        "carrier": "SF",
        "channel": "tmall",
    }
    return [
        OrderEvent(event_id=f"{order_id}-0", status=Status.PAID, event_time=at, **common),
        OrderEvent(
            event_id=f"{order_id}-1",
            status=Status.PACKED,
            event_time=at + timedelta(seconds=1),
            node=warehouse,
            lat=lat,
            lon=lon,
            **common,
        ),
    ]


def cancelled(order_id: str, at: datetime) -> OrderEvent:
    return OrderEvent(
        event_id=f"{order_id}-2",
        order_id=order_id,
        sku="SKU1",
        source="tt",
        status=Status.CANCELLED,
        event_time=at,
        warehouse=HANGZHOU[0],
        carrier="SF",
        channel="tmall",
    )


def cell(where: tuple[str, float, float]) -> str:
    return str(h3.latlng_to_cell(where[1], where[2], MAP_RES))


def now() -> datetime:
    return datetime.now(UTC)


def minute_of(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


class Stack:
    def __init__(
        self, settings: Settings, worker: ManagedProcess, web: WebTier, browser: Browser, feeder: Feeder
    ) -> None:
        self.settings, self.worker, self.web, self.browser, self.feeder = settings, worker, web, browser, feeder

    def send(self, events: list[OrderEvent]) -> None:
        for event in events:
            self.feeder.send(ORDER_EVENTS, event.order_id, event.model_dump_json(exclude_none=True).encode())
        self.feeder.flush()

    def kpi(self, key: str) -> str:
        return self.browser.text(ids.kpi_value(key))

    def cells(self) -> dict[str, int]:
        """H3 cell -> SKUs of the hexagons the map draws (cells with SKUs)."""
        found = self.browser.script(
            "var g = document.querySelector('#map-graph .js-plotly-plot');"
            "if (!g || !g.data || !g.data[arguments[0]]) { return null; }"
            "var t = g.data[arguments[0]]; return [t.locations || [], t.customdata || []];",
            2,
        )
        if not found:
            return {}
        return {c: int(d[0]) for c, d in zip(found[0], found[1], strict=True) if int(d[0]) > 0}

    def wait_live(self, skus: int, cells: dict[str, int], what: str) -> None:
        try:
            self.browser.wait(lambda _d: self.kpi("skus_in_flight") == str(skus) and self.cells() == cells, 120, what)
        except Exception:
            raise AssertionError(
                f"{what}: KPI {self.kpi('skus_in_flight')!r}, cells {self.cells()}\n{self.worker.log_tail(30)}"
            ) from None

    def influx_minutes_after(self, minute: int) -> bool:
        """A ``delays_orders`` minute after ``minute`` is in InfluxDB (written with the final
        points of the minutes before it)."""
        since = datetime.fromtimestamp((minute + 1) * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return bool(
            influx_query(self.settings, f'SELECT count("orders") FROM "delays_orders" WHERE time >= \'{since}\'')
        )


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, influx: LocalInflux, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = module_settings(broker, influx)
    config_dir = tmp_path_factory.mktemp("config")
    shutil.copytree(settings.config_dir, config_dir, dirs_exist_ok=True)
    rules = yaml.safe_load((config_dir / "sla.yaml").read_text())
    # Minutes follow the wall clock closely (the default 5 min lateness would only shift them).
    rules["watermark"]["allowed_lateness"] = "1s"
    (config_dir / "sla.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True))
    settings = settings.model_copy(update={"config_dir": config_dir})
    worker = start_worker(settings, tmp_path_factory.mktemp("worker") / "worker.log", core_only=False)
    deps = build_deps(settings, prefix=MOUNT_PATH + "/")
    web = WebTier(settings, build_staff(), deps).start()
    feeder = Feeder(settings)
    browser = Browser()
    try:
        browser.login(web.warroom_url, "manager")
        yield Stack(settings, worker, web, browser, feeder)
    finally:
        browser.close()
        feeder.close()
        web.stop()
        deps.history.close()
        worker.stop()


def test_a_past_minute_shows_its_map_kpis_and_incidents_then_live_resumes(stack: Stack) -> None:
    partitions = stack.settings.partitions
    first, second, third = (order_ids(p, partitions) for p in ("TA", "TB", "TC"))
    assert cell(HANGZHOU) != cell(SHANGHAI)

    # Phase A: orders packed in Hangzhou, all in flight.
    stack.send([e for o in first for e in placed(o, now(), HANGZHOU)])
    stack.wait_live(len(first), {cell(HANGZHOU): len(first)}, "phase A live")
    shown_a = minute_of(now() - timedelta(seconds=1))  # the watermark's minute (1 s lateness)

    # Phase B, a minute later: some A orders cancelled, new orders packed in Shanghai.
    wait_until(lambda: minute_of(now() - timedelta(seconds=1)) > shown_a, 75, what="the next minute")
    at = now()
    stack.send([cancelled(o, at) for o in first[:CANCELLED]] + [e for o in second for e in placed(o, at, SHANGHAI)])
    live_b = {cell(HANGZHOU): len(first) - CANCELLED, cell(SHANGHAI): len(second)}
    stack.wait_live(len(first) - CANCELLED + len(second), live_b, "phase B live")
    wait_until(lambda: stack.influx_minutes_after(shown_a), 60, what="phase A's minute closed in InfluxDB")

    # Back to A's minute with the keyboard: the slider's handle, one arrow press a minute.
    driver = stack.browser.driver
    thumb = driver.find_element(By.CSS_SELECTOR, SLIDER_THUMB)
    assert thumb.get_attribute("aria-label") == both("travel.slider")[0]
    # While live the slider follows the current minute (its range is refreshed every few seconds).
    stack.browser.wait(lambda _d: int_attribute(thumb, "aria-valuenow") > shown_a, 30, "the slider at now")
    steps = int_attribute(thumb, "aria-valuenow") - shown_a
    thumb.send_keys(*([Keys.ARROW_LEFT] * steps))
    stack.browser.wait(lambda _d: thumb.get_attribute("aria-valuenow") == str(shown_a), 10, "the slider at A's minute")
    stack.browser.wait(
        lambda _d: stack.kpi("skus_in_flight") == str(len(first)) and stack.cells() == {cell(HANGZHOU): len(first)},
        30,
        "A's KPIs and map as of its minute",
    )
    assert stack.kpi("orders_in_flight") == str(len(first))
    assert stack.browser.text(ids.INCIDENT_TABLE) == both("incidents.none")[0]
    local = datetime.fromtimestamp(shown_a * 60, UTC).astimezone(ZoneInfo(TIMEZONE)).strftime("%H:%M")
    assert local in stack.browser.text("travel-status")

    # Live deltas are held back while a past minute is shown.
    at = now()
    stack.send([e for o in third for e in placed(o, at, SHANGHAI)])
    wait_until(
        lambda: any(
            k.get("skus_in_flight") == len(first) - CANCELLED + len(second) + len(third)
            for k in stack.web.gateway.warroom.items("kpis")
        ),
        90,
        what="phase C in the gateway",
    )
    assert stack.kpi("skus_in_flight") == str(len(first))

    # "Live" shows the current values again.
    driver.find_element(By.ID, "travel-live").click()
    live_c = {cell(HANGZHOU): len(first) - CANCELLED, cell(SHANGHAI): len(second) + len(third)}
    stack.wait_live(len(first) - CANCELLED + len(second) + len(third), live_c, "live again")
    assert stack.browser.text("travel-status") == both("travel.showing_live")[0]
    assert not [e for e in stack.browser.errors() if "favicon" not in e]
