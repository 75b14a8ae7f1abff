"""Geofences in the running worker (``orderradar worker``, real broker and influxd), and the
"courier is nearby" notice through the web server's ``/ws/track`` and on the page in Chromium.

One parcel enters a hub fence (its stage advances to ``hub_arrival`` once, also after the
same records are produced again), dwells, leaves (a ``dwell`` point for the heatmap) and
comes within its customer area while out for delivery; fixes around a fence drawn in
GCJ-02 check that both sides are converted once; an operator fence file edited while the
worker runs takes effect without a restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from stages_scenario import Sent
from stream_harness import influx_query
from test_stages_worker import read_values
from websockets.asyncio.client import connect

from config.settings import Settings, to_env
from dashboard.warroom.history import InfluxHistory, TimeWindow
from geo.coords import wgs84_to_gcj02_arrays
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from stream.contract import OrderEvent, Status
from stream.topics import ORDER_EVENTS, ORDER_UPDATES
from tracking.browser import PHONE, chromium, wait_for
from tracking.stack import WebServer

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]

HUB = (30.30, 120.20)  # lat, lon (WGS-84)
DEST = (30.32, 120.22)
GCJ_SITE = (30.40, 120.30)  # WGS-84 position of a station whose fence was drawn on an AMap (GCJ-02)
OPS_BEFORE = (30.50, 120.50)
OPS_AFTER = (30.60, 120.60)


def _gcj(lat: float, lon: float) -> tuple[float, float]:
    lons, lats = wgs84_to_gcj02_arrays([lon], [lat])
    return float(lats[0]), float(lons[0])


def _square(fence_id: str, id_field: str, lat: float, lon: float, half: float) -> dict[str, Any]:
    ring = [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]
    return {
        "type": "Feature",
        "properties": {id_field: fence_id, "name": fence_id},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def _layer_file(path: Path, *features: dict[str, Any]) -> None:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}), encoding="utf-8")


def write_fences(config_dir: Path) -> Path:
    """A hub (advances to hub_arrival), a GCJ-02 station fence and an operator fence."""
    fences = config_dir / "geofences"
    fences.mkdir(exist_ok=True)
    _layer_file(fences / "hubs.geojson", _square("HUB-GF", "hub_id", *HUB, 0.003))
    _layer_file(fences / "gcj_stations.geojson", _square("GCJ-1", "station_id", *_gcj(*GCJ_SITE), 0.0015))
    _layer_file(fences / "operator.geojson", _square("OPS-1", "fence_id", *OPS_BEFORE, 0.002))
    (config_dir / "geofences.yaml").write_text(
        "layers:\n"
        "  - {name: hubs, path: geofences/hubs.geojson, kind: hub, id_field: hub_id, attributes: [name],"
        " advance_stage_to: hub_arrival, dwell_limit: PT4H}\n"
        "  - {name: gcj_stations, path: geofences/gcj_stations.geojson, kind: station, id_field: station_id,"
        " coords: gcj02}\n"
        "  - {name: operator, path: geofences/operator.geojson, kind: restricted, id_field: fence_id}\n",
        encoding="utf-8",
    )
    return fences / "operator.geojson"


def event(
    order_id: str, n: int, status: Status, at: datetime, pos: tuple[float, float] | None = None, **extra: Any
) -> Sent:
    fields: dict[str, Any] = {"source": "tms", "courier_id": "C7", "carrier": "SF", "region": "Zhejiang", **extra}
    if pos is not None:
        fields.update(lat=pos[0], lon=pos[1])
    return Sent(
        OrderEvent(event_id=f"{order_id}-{n}", order_id=order_id, sku="S1", status=status, event_time=at, **fields), at
    )


def journey(start: datetime) -> list[Sent]:
    dest = {"dest_lat": DEST[0], "dest_lon": DEST[1]}
    minute = timedelta(minutes=1)
    g1 = [
        event("G1", 0, Status.PAID, start, source="oms", **dest),
        event("G1", 1, Status.OUTBOUND_SCAN, start + 5 * minute, (30.25, 120.10), **dest),
        event("G1", 2, Status.LINEHAUL, start + 30 * minute, HUB, **dest),  # enters the hub
        event("G1", 3, Status.OUT_FOR_DELIVERY, start + 50 * minute, (HUB[0] + 0.001, HUB[1]), **dest),  # dwell
        event("G1", 4, Status.OUT_FOR_DELIVERY, start + 60 * minute, (30.31, 120.21), **dest),  # exit
        event("G1", 5, Status.OUT_FOR_DELIVERY, start + 70 * minute, (DEST[0] + 0.001, DEST[1]), **dest),
    ]
    gcj_lat, gcj_lon = _gcj(*GCJ_SITE)
    others = [
        event("G2", 0, Status.LINEHAUL, start + 10 * minute, GCJ_SITE),  # WGS-84 fix at the station
        event("G3", 0, Status.LINEHAUL, start + 10 * minute, (gcj_lat, gcj_lon)),  # GCJ numbers read as WGS-84
        event("G4", 0, Status.LINEHAUL, start + 10 * minute, (gcj_lat, gcj_lon), crs="gcj02"),  # declared GCJ-02
    ]
    return g1 + others


async def produce(settings: Settings, sent: list[Sent]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for s in sent:
            await producer.send_and_wait(settings.topic(ORDER_EVENTS), s.value, key=s.key)
    finally:
        await producer.stop()


def fence_events(settings: Settings) -> set[tuple[str, str, str, str]]:
    """``(order_id, entity, event, fence_id)`` of every ``geofence_events`` point."""
    rows = influx_query(settings, 'SELECT "order_id", "entity", "event", "fence_id" FROM "geofence_events"')
    return {(r[1], r[2], r[3], r[4]) for r in rows}


def geofence_advances(settings: Settings) -> list[list[Any]]:
    return influx_query(settings, """SELECT "event_id", "order_id" FROM "sku_events" WHERE "source" = 'geofence'""")


def latest_update(settings: Settings, order_id: str) -> dict[str, Any] | None:
    updates = [
        u for u in asyncio.run(read_values(settings, settings.topic(ORDER_UPDATES))) if u.get("order_id") == order_id
    ]
    return max(updates, key=lambda u: u["seq"]) if updates else None


async def tracking_view(web: WebServer, token: str, until: Any) -> dict[str, Any]:
    """The customer view on ``/ws/track`` (snapshot + deltas) once ``until(view)`` holds."""
    view: dict[str, Any] = {}
    async with connect(web.url.replace("http://", "ws://") + "/ws/track", origin=web.url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "token": token}))
        while not until(view):
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if message["type"] == "snapshot":
                view = message
            elif message["type"] == "delta":
                view = {**view, **{k: v for k, v in message.items() if k not in ("skus", "removed")}}
    return view


def test_worker_geofences_enter_dwell_exit_advance_nearby_reload_gcj(stack_settings: Settings, tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(stack_settings.config_dir, config_dir)
    operator_file = write_fences(config_dir)
    settings = stack_settings.model_copy(update={"config_dir": config_dir})
    env = {**os.environ, **to_env(settings), "PYTHONUNBUFFERED": "1"}
    worker = ManagedProcess(
        "worker", [sys.executable, "-m", "orderradar.cli", "worker"], tmp_path / "worker.log", env=env, cwd=REPO
    ).start()
    web: WebServer | None = None
    try:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        sent = journey(start)
        asyncio.run(produce(settings, sent))

        expected = {
            ("G1", "sku", "enter", "HUB-GF"),
            ("G1", "courier", "enter", "HUB-GF"),
            ("G1", "sku", "dwell", "HUB-GF"),
            ("G1", "sku", "exit", "HUB-GF"),
            ("G1", "sku", "enter", "customer:G1|S1"),
            ("G2", "sku", "enter", "GCJ-1"),
            ("G4", "sku", "enter", "GCJ-1"),
        }
        try:
            wait_until(
                lambda: expected <= fence_events(settings),
                timeout=90,
                interval=0.5,
                what="enter, dwell and exit points in geofence_events",
            )
        except TimeoutError:
            raise AssertionError(f"{sorted(fence_events(settings))}\n{worker.log_tail(40)}") from None
        found = fence_events(settings)
        # A GCJ-02 fence converted on load matches the WGS-84 fix (and the declared GCJ-02 fix,
        # converted by the worker), not the same numbers read as WGS-84 (~500 m off).
        assert not any(order == "G3" for order, *_ in found)

        # The hub entry applied hub_arrival once, through the state machine (in the timeline).
        assert [row[1:] for row in geofence_advances(settings)] == [["geofence:HUB-GF:S1", "G1"]]
        update = latest_update(settings, "G1")
        assert update is not None
        timeline = update["skus"]["S1"]["timeline"]
        assert [e["status"] for e in timeline if e.get("source") == "geofence"] == ["hub_arrival"]
        # The exit fed the dwell heatmap (20 minutes inside, to the exit fix).
        dwell = influx_query(settings, """SELECT "count", "total_s" FROM "dwell" WHERE "source" = 'geofence'""")
        assert [row[1:] for row in dwell] == [[1, 1800.0]]
        with InfluxHistory.from_settings(settings) as history:  # what the war-room's dwell heatmap reads
            heat = history.dwell(TimeWindow(start, start + timedelta(hours=3)))
        assert "HUB-GF" in set(heat["node"])
        geofence = update["extensions"]["geofence"]
        assert list(geofence["nearby"]) == ["S1"]
        assert [(e["event"], e["fence"]) for e in geofence["events"]][:3] == [
            ("enter", "HUB-GF"),
            ("exit", "HUB-GF"),
            ("enter", None),
        ]

        # The same records again (a producer retry or a replay): nothing advances twice.
        sentinel = event(
            "G1", 6, Status.OUT_FOR_DELIVERY, start + timedelta(minutes=75), DEST, dest_lat=DEST[0], dest_lon=DEST[1]
        )
        asyncio.run(produce(settings, [*sent, sentinel]))
        wait_until(
            lambda: influx_query(settings, """SELECT "event_id" FROM "sku_events" WHERE "event_id" = 'G1-6'"""),
            timeout=60,
            interval=0.5,
            what="the sentinel after the replayed records",
        )
        assert [row[1:] for row in geofence_advances(settings)] == [["geofence:HUB-GF:S1", "G1"]]
        enters = influx_query(
            settings,
            """SELECT "order_id" FROM "geofence_events" WHERE "event" = 'enter' """
            """AND "entity" = 'sku' AND "fence" = 'HUB-GF'""",
        )
        assert len(enters) == 1

        # "Courier is nearby" on the customer's tracking page, through the web server.
        web = WebServer(settings, tmp_path).start()
        token = web.issue_link("G1")
        view = asyncio.run(tracking_view(web, token, lambda v: v.get("nearby") is True))
        assert view["skus"]["S1"]["status"] == "out_for_delivery"
        assert "C7" not in json.dumps(view)  # the courier's id stays on the staff side
        for lang, text in (("zh-CN", "快递员就在附近"), ("en-US", "Your courier is nearby")):
            with chromium(PHONE, lang=lang) as phone:
                phone.get(f"{web.url}/t/{token}")
                wait_for(
                    phone, lambda d: d.find_element(By.ID, "nearby").is_displayed(), 20, "the courier-nearby notice"
                )
                assert text in phone.find_element(By.ID, "nearby").text

        # An operator fence moved while the worker runs: the next fixes are judged by it.
        _layer_file(operator_file, _square("OPS-1", "fence_id", *OPS_AFTER, 0.002))
        probes = iter(range(1000))

        def probe_enters() -> bool:
            n = next(probes)
            at = start + timedelta(minutes=80 + n)
            asyncio.run(produce(settings, [event(f"H{n}", 0, Status.LINEHAUL, at, OPS_AFTER)]))
            return any(fence == "OPS-1" for _, _, _, fence in fence_events(settings))

        wait_until(probe_enters, timeout=60, interval=1.0, what="an enter into the moved operator fence")

        # A restarted worker resumes the visits it had (stage state in the changelog): the
        # courier leaving the customer area is an exit timed from the entry before the restart.
        worker.stop()
        worker = ManagedProcess(
            "worker", [sys.executable, "-m", "orderradar.cli", "worker"], tmp_path / "worker-2.log", env=env, cwd=REPO
        ).start()
        away = event(
            "G1",
            7,
            Status.OUT_FOR_DELIVERY,
            start + timedelta(minutes=100),
            (30.31, 120.21),
            dest_lat=DEST[0],
            dest_lon=DEST[1],
        )
        asyncio.run(produce(settings, [away]))
        query = """SELECT "dwell_s" FROM "geofence_events" WHERE "event" = 'exit' AND "fence" = 'customer_area'"""
        try:
            exits = wait_until(
                lambda: influx_query(settings, query),
                timeout=90,
                interval=0.5,
                what="the exit from the customer area after a restart",
            )
        except TimeoutError:
            raise AssertionError(worker.log_tail(40)) from None
        assert [row[1] for row in exits] == [30 * 60.0]  # entered at minute 70, left at minute 100
        wait_until(
            lambda: (
                "nearby"
                not in (latest_update(settings, "G1") or {}).get("extensions", {}).get("geofence", {"nearby": 1})
            ),
            timeout=30,
            interval=0.5,
            what="the nearby flag cleared",
        )
    finally:
        if web is not None:
            web.stop()
        worker.stop()
