"""The demo lives: the simulator as ``orderradar up`` runs it (50 events/s in real time, a
warm-up of simulated hours, a backfill of parcels in flight), started at 20:55 China time
whatever the wall clock says, through the real broker, influxd and ``orderradar worker``
with the shipped SLA rules (``config/sla.yaml``).

* parcels in every stage reach the worker's order snapshots within 2 minutes of the first
  record;
* each documented scenario, switched on through the control file when the simulated clock
  reaches 21:00, gives its incident named by its root cause on ``order-incidents`` within
  3 minutes.

The five minutes before 21:00 are the flow checks' baseline (``incidents.flow`` in
``config/sla.yaml``: a key is judged after 3 minutes of its own live flow, in windows of up
to 3 minutes). The scenarios are switched on together (on different hubs, provinces,
sources and devices) so the whole module takes one 3-minute window, each where the flow is
large enough for a 3-minute stop to be significant (a key expecting about 2 moves a minute,
such as hub HZ-3 at 21:00, can be quiet that long by chance). A scenario that does not pass is marked
xfail with the measured reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import shapely
from live_demo import TopicTail, cli

from config.settings import Settings
from orderradar.devstack.isolation import isolated_settings
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from orderradar.simulator.command import latest_time_of_day
from orderradar.simulator.scenarios import Typhoon
from stream.topics import ORDER_EVENTS, ORDER_INCIDENTS, ORDER_UPDATES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The scenarios are switched on at this China time (the latest such moment, at most a day
#: ago); the simulated run starts ``BASELINE`` earlier, so the flow checks know the normal flow.
SWITCH = (21, 0)
BASELINE = timedelta(minutes=5)
#: ``orderradar up``'s rate (50 events/s) and backfill (0.5 %), with 12 simulated hours of
#: warm-up instead of 36: 36 took 179 s of the fixture's 240 on a loaded 2-core machine; with
#: 12 the flow at 21:00 is about 35 events/s instead of 40.
SIMULATOR = ("simulate", "--rate", "50", "--warmup", "12h", "--backfill", "0.005", "--stats-every", "5")
STAGE_DEADLINE_S = 120.0
INCIDENT_DEADLINE_S = 180.0
STAGES = {"paid", "picked", "packed", "outbound_scan", "linehaul", "hub_arrival", "out_for_delivery", "delivered"}
#: The typhoon over Hangzhou (about 90 moves a minute within 80 km at 21:00; the shipped
#: ``fujian_coast`` sees about 2, and ``pearl_river_delta`` holds most of Guangdong's flow, so
#: its drop is the province's, which the carrier slowdown already takes).
TYPHOON = Typhoon(zone="zhejiang_coast", lat=30.2741, lon=120.1551)
ZONE = TYPHOON.polygon


def _rc(record: dict[str, Any]) -> dict[str, Any]:
    return record.get("root_cause") or {}


def _in_zone(record: dict[str, Any]) -> bool:
    where = record.get("location") or _rc(record)
    return (
        record.get("dimension") == "area"
        and "lat" in where
        and bool(shapely.contains_xy(ZONE, where["lon"], where["lat"]))
    )


def _newest(events: list[dict[str, Any]]) -> datetime:
    return max(
        (datetime.fromisoformat(e["event_time"]) for e in events if "event_time" in e),
        default=datetime.min.replace(tzinfo=UTC),
    )


@dataclass(frozen=True)
class Case:
    control: str
    names_cause: Callable[[dict[str, Any]], bool]
    xfail: str | None = None


CASES: dict[str, Case] = {
    # WH-2 (Wuhan): about 45 parcel moves a minute at 21:00; HZ-3, the scenario's default, about 2
    "hub_outage": Case("+hub_outage:hub=WH-2", lambda r: _rc(r).get("hub") == "WH-2"),
    "carrier_slowdown": Case(
        "+carrier_slowdown:province=Guangdong,factor=3", lambda r: _rc(r).get("region") == "440000"
    ),
    "typhoon": Case(f"+typhoon:zone={TYPHOON.zone},lat={TYPHOON.lat},lon={TYPHOON.lon}", _in_zone),
    # YW-1-SCN-01: about 12 events a minute at 21:00 (the scenario's default, NC-1-SCN-01, about 1)
    "broken_scanner": Case("+broken_scanner:device=YW-1-SCN-01", lambda r: _rc(r).get("device_id") == "YW-1-SCN-01"),
    "flash_sale": Case("+flash_sale:factor=47,minutes=5,channel=douyin", lambda r: _rc(r).get("channel") == "douyin"),
    "source_lag": Case("+source_lag:source=wms,lag_minutes=15", lambda r: _rc(r).get("source") == "wms"),
}


@dataclass
class Demo:
    settings: Settings
    worker: ManagedProcess
    simulator: ManagedProcess
    control: Path
    tail: TopicTail
    first_record_at: float = 0.0
    switched_at: float = 0.0
    before_switch: list[dict[str, Any]] = field(default_factory=list)

    def logs(self) -> str:
        return f"worker:\n{self.worker.log_tail(25)}\nsimulator:\n{self.simulator.log_tail(15)}"


@pytest.fixture(scope="module")
def demo(broker, influx, tmp_path_factory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("demo")
    settings = isolated_settings(broker.bootstrap, influx.url, tmp)
    control = tmp / "control.txt"
    control.touch()
    switch = latest_time_of_day(*SWITCH, datetime.now(UTC))
    start = (switch - BASELINE).isoformat()
    worker = cli("worker", settings, tmp, "worker")
    simulator = cli("simulator", settings, tmp, *SIMULATOR, "--start", start, "--control", str(control))
    tail = TopicTail(settings, [settings.topic(t) for t in (ORDER_EVENTS, ORDER_UPDATES, ORDER_INCIDENTS)])
    demo = Demo(settings, worker, simulator, control, tail)
    try:
        try:
            wait_until(
                lambda: tail.records(settings.topic(ORDER_EVENTS)),
                timeout=240,
                interval=0.5,
                what="the simulator's first records (after its warm-up)",
            )
        except TimeoutError:
            raise AssertionError(demo.logs()) from None
        demo.first_record_at = time.monotonic()
        topic = settings.topic(ORDER_EVENTS)
        try:
            wait_until(
                lambda: _newest(tail.values(topic)[-500:]) >= switch,
                timeout=BASELINE.total_seconds() + 60,
                interval=0.5,
                what="the simulated clock at 21:00",
            )
        except TimeoutError:
            raise AssertionError(demo.logs()) from None
        demo.before_switch = demo.tail.values(settings.topic(ORDER_INCIDENTS))
        # every scenario on at once, at 21:00 simulated: one 3-minute window for all of them
        control.write_text("".join(case.control + "\n" for case in CASES.values()))
        demo.switched_at = time.monotonic()
        yield demo
    finally:
        tail.close()
        simulator.stop()
        worker.stop()


def test_parcels_in_every_stage_within_two_minutes(demo: Demo) -> None:
    topic = demo.settings.topic(ORDER_UPDATES)

    def missing() -> set[str]:
        seen = {sku.get("status") for order in demo.tail.values(topic) for sku in order.get("skus", {}).values()}
        return STAGES - seen

    left = demo.first_record_at + STAGE_DEADLINE_S - time.monotonic()
    try:
        wait_until(
            lambda: not missing(), timeout=max(left, 0.0), interval=1.0, what="order snapshots with SKUs in every stage"
        )
    except TimeoutError:
        raise AssertionError(f"no SKU in {sorted(missing())}\n{demo.logs()}") from None


def test_the_backfill_and_the_baseline_open_no_flow_incident(demo: Demo) -> None:
    """The backfill's past scans arrive within seconds: a catch-up, no baseline, nothing to
    judge; five minutes of normal traffic open nothing either."""
    flows = [r for r in demo.before_switch if r.get("kind") == "flow"]
    assert flows == [], [(r["root_cause_text"], r["state"], r["at"]) for r in flows]


@pytest.mark.parametrize("name", list(CASES))
def test_scenario_gives_its_incident_named_by_its_root_cause(demo: Demo, name: str, request) -> None:
    case = CASES[name]
    if case.xfail:
        request.applymarker(pytest.mark.xfail(reason=case.xfail, strict=False))
    topic = demo.settings.topic(ORDER_INCIDENTS)

    def named() -> list[dict[str, Any]]:
        return [r for r in demo.tail.values(topic) if case.names_cause(r)]

    left = demo.switched_at + INCIDENT_DEADLINE_S - time.monotonic()
    try:
        wait_until(named, timeout=max(left, 0.0), interval=1.0, what=f"the {name} incident")
        first = named()[0]
        # seen by this test after the earlier cases' waits; ``at``: its evaluation's event time
        waited = time.monotonic() - demo.switched_at
        print(f"{name}: {first['root_cause_text']} within {waited:.0f} s, at {first.get('at')} (switch at 21:00)")
    except TimeoutError:
        seen = sorted({r.get("root_cause_text", "?") for r in demo.tail.values(topic)})
        raise AssertionError(
            f"{name}: no incident named by its cause within 3 minutes; incidents seen: {seen}\n{demo.logs()}"
        ) from None
