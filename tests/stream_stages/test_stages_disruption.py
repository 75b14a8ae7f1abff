"""Disruption zones from the control topic to marked orders, one incident and its resolution.

Real broker and InfluxDB: an operator's zone is published on ``orderradar-control`` the way
the web tier does it, the worker's :class:`ZoneFeed` follows the topic, the pipeline (geo
stage + disruption stage) marks the in-flight SKUs inside the zone on their orders'
``order-updates``, raises one incident, and clears both when the zone is withdrawn. The
gateway's customer projection turns the mark into a delay notice without naming the zone.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from stream_harness import read_topic

from config.settings import Settings
from dashboard.gateway.order_snapshot import OrderSnapshot
from dashboard.gateway.projection import order_view
from orderradar.devstack.waiting import async_wait_until
from stream.contract import OrderEvent, Status
from stream.core.control_commands import DisruptionCreate, DisruptionDelete
from stream.core.control_commands import ZoneDeclaration as ZoneCommand
from stream.kafka.zone_feed import ZoneFeed
from stream.pipeline import Pipeline, PipelineConfig
from stream.sinks.influx import InfluxWriter
from stream.sinks.outbox import Outbox
from stream.stage_api import SourceRecord
from stream.stages.disruption_stage import DisruptionStage, DisruptionTopics
from stream.stages.geo_stage import GeoStage
from stream.topics import ALERT_INPUTS, CONTROL, ORDER_INCIDENTS, ORDER_UPDATES
from stream.worker import pipeline_topics

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
BOX = {"type": "Polygon", "coordinates": [[[121.0, 29.5], [122.5, 29.5], [122.5, 30.3], [121.0, 30.3], [121.0, 29.5]]]}
# (order, sku, lat, lon): two SKUs in the typhoon box (Ningbo, Zhoushan), one outside (Shanghai)
PARCELS = [
    ("o-nb", "s1", 29.8683, 121.5440),
    ("o-nb", "s2", 31.2304, 121.4737),
    ("o-zs", "s1", 29.9853, 122.2072),
    ("o-sh", "s1", 31.2304, 121.4737),
]


def records() -> list[SourceRecord]:
    out = []
    for n, (order, sku, lat, lon) in enumerate(PARCELS):
        event = OrderEvent(
            event_id=f"{order}-{sku}-0",
            order_id=order,
            sku=sku,
            status=Status.PAID,
            event_time=NOW - timedelta(minutes=5),
            source="oms",
            lat=lat,
            lon=lon,
        )
        out.append(SourceRecord("order-events", 0, n, None, order.encode(), event.to_json()))
    return out


async def publish(settings: Settings, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic(CONTROL), value, key=b"dz-typhoon", partition=0)
    finally:
        await producer.stop()


def last_updates(settings: Settings) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for record in asyncio.run(read_topic(settings, settings.topic(ORDER_UPDATES))):
        value = orjson.loads(record.value)
        if value["seq"] >= out.get(value["order_id"], {}).get("seq", -1):
            out[value["order_id"]] = value
    return out


def test_a_declared_zone_marks_its_skus_raises_one_incident_and_clears(stack_settings: Settings) -> None:
    settings = stack_settings
    feed = ZoneFeed(settings.kafka_bootstrap, settings.topic(CONTROL), retry_s=0.5)
    create = DisruptionCreate(
        actor="manager",
        at=NOW,
        disruption_id="dz-typhoon",
        zone=ZoneCommand(name="台风 Bebinca", geometry=BOX, reason="typhoon", ends_at=NOW + timedelta(hours=12)),
    )
    delete = DisruptionDelete(actor="manager", at=NOW, disruption_id="dz-typhoon")

    async def scenario() -> None:
        outbox = Outbox(settings.kafka_bootstrap)
        await outbox.start()
        influx = InfluxWriter(settings.influx_url, settings.influx_db)
        geo = GeoStage()
        stage = DisruptionStage(
            geo, feed, DisruptionTopics(settings.topic(ORDER_INCIDENTS), settings.topic(ALERT_INPUTS)), interval_s=0.0
        )
        pipeline = Pipeline(PipelineConfig(pipeline_topics(settings)), {}, outbox, influx, [geo, stage])
        follower = asyncio.ensure_future(stage.run())
        try:
            await pipeline.process(records(), NOW)
            await publish(settings, orjson.dumps(create.to_record()))
            await async_wait_until(lambda: "dz-typhoon" in feed.zones, 30, what="the zone in the feed")
            await pipeline.tick(NOW)
            await pipeline.tick(NOW)  # unchanged: nothing new is published
            await publish(settings, orjson.dumps(delete.to_record()))
            await async_wait_until(lambda: not feed.zones, 30, what="the zone withdrawn from the feed")
            await pipeline.tick(NOW)
        finally:
            follower.cancel()
            await outbox.stop()
            await influx.aclose()

    # marked while the zone is there
    asyncio.run(scenario())
    updates = [orjson.loads(r.value) for r in asyncio.run(read_topic(settings, settings.topic(ORDER_UPDATES)))]
    marked = {u["order_id"]: u["extensions"]["disruption"] for u in updates if "disruption" in u.get("extensions", {})}
    assert set(marked) == {"o-nb", "o-zs"}
    assert marked["o-nb"] == {"zones": ["dz-typhoon"], "names": ["台风 Bebinca"], "skus": ["s1"], "reason": "weather"}
    # ... and cleared after the withdrawal (the last snapshot of every order has no mark)
    final = last_updates(settings)
    assert all("disruption" not in u.get("extensions", {}) for u in final.values())

    # the customer sees a weather delay while marked, never the zone's name
    view = order_view(
        OrderSnapshot.model_validate(
            next(u for u in updates if u["order_id"] == "o-zs" and "disruption" in u.get("extensions", {}))
        )
    )
    assert view.header["delay"] == {"reason": "weather"}
    assert "Bebinca" not in orjson.dumps(view.as_dict()).decode()
    assert order_view(OrderSnapshot.model_validate(final["o-zs"])).header["delay"] is None

    # one incident, opened then resolved, also handed to alerting
    incidents = [orjson.loads(r.value) for r in asyncio.run(read_topic(settings, settings.topic(ORDER_INCIDENTS)))]
    assert [(i["incident_id"], i["state"]) for i in incidents] == [
        ("disruption-dz-typhoon", "open"),
        ("disruption-dz-typhoon", "resolved"),
    ]
    assert incidents[0]["counts"]["orders"] == 2 and incidents[0]["counts"]["skus"] == 2
    # the withdrawn zone's incident keeps its name (the war-room titles it by name)
    assert [i["zone"]["name"] for i in incidents] == ["台风 Bebinca", "台风 Bebinca"]
    alert_inputs = asyncio.run(read_topic(settings, settings.topic(ALERT_INPUTS)))
    assert [orjson.loads(r.value)["state"] for r in alert_inputs] == ["open", "resolved"]
