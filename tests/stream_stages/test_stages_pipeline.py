"""Geo and delays stages in the batch pipeline (in-process, real broker and InfluxDB):
a hub outage gives exactly one incident naming the hub, heatmap and KPI items for the
war-room, and ``incidents`` / ``delays`` points."""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from stages_scenario import DOWN_HUB, HUBS, fast_rules, outage_traffic
from stream_harness import influx_query, read_topic

from alerting.engine import AlertEngine
from alerting.policy import load_policy
from config.settings import Settings
from stream.core.sla import load_sla_rules
from stream.pipeline import Pipeline, PipelineConfig
from stream.sinks.influx import INFLUX_RETRY, InfluxWriter
from stream.sinks.outbox import Outbox
from stream.stage_api import SourceRecord, StageValue
from stream.stages.alerting_agent import AlertingAgent, build_delivery
from stream.stages.delays_stage import DelaysStage, DelaysTopics
from stream.stages.geo_stage import GeoStage, tag_cell
from stream.topics import ALERTS, ORDER_INCIDENTS, WARROOM_UPDATES, changelog_topic
from stream.worker import pipeline_topics

pytestmark = pytest.mark.integration


class StepClock:
    """Monotonic clock that moves 0.25 s per reading: the 1 s war-room coalescing fires
    every fourth batch, deterministically."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.25
        return self.t


async def run_outage(settings: Settings, rules_path: Path) -> tuple[Pipeline, DelaysStage]:
    now = datetime.now(UTC).replace(microsecond=0)
    sent = outage_traffic(now - timedelta(hours=4), minutes=235, outage_after=100)
    records = [
        SourceRecord(
            "order-events",
            zlib.crc32(s.key) % settings.partitions,
            i,
            int(s.received.timestamp() * 1000),
            s.key,
            s.value,
        )
        for i, s in enumerate(sent)
    ]
    geo = GeoStage()
    topics = DelaysTopics(settings.topic(ORDER_INCIDENTS), settings.topic(WARROOM_UPDATES))
    delays = DelaysStage(load_sla_rules(rules_path), topics, geo, clock=StepClock())
    outbox = Outbox(settings.kafka_bootstrap)
    await outbox.start()
    influx = InfluxWriter(settings.influx_url, settings.influx_db, policy=replace(INFLUX_RETRY, attempts=2))
    pipeline = Pipeline(PipelineConfig(pipeline_topics(settings)), {}, outbox, influx, [geo, delays], cell_of=tag_cell)
    try:
        for i in range(0, len(records), 150):
            await pipeline.process(records[i : i + 150], now)
        for _ in range(4):  # idle ticks flush the coalesced war-room items
            await pipeline.tick(now)
    finally:
        await outbox.stop()
        await influx.aclose()
    return pipeline, delays


def test_hub_outage_gives_one_incident_heatmap_and_kpis(stack_settings: Settings, tmp_path: Path) -> None:
    settings = stack_settings
    rules_path = fast_rules(tmp_path / "sla.yaml")
    pipeline, delays = asyncio.run(run_outage(settings, rules_path))
    assert pipeline.stats.dead_lettered == 0, pipeline.stats
    assert delays.engine.stats()["open_incidents"] == 1, (delays.engine.stats(), pipeline.stats)

    incidents = [orjson.loads(r.value) for r in asyncio.run(read_topic(settings, settings.topic(ORDER_INCIDENTS)))]
    assert {r["incident_id"] for r in incidents} == {incidents[0]["incident_id"]}, incidents
    opened = incidents[0]
    assert opened["event"] == "incident.opened" and opened["kind"] == "delay"
    lat, lon = HUBS[DOWN_HUB]
    assert opened["root_cause"] == {"hub": DOWN_HUB, "lat": lat, "lon": lon}
    assert max(r["counts"]["current"] for r in incidents) >= 8

    warroom = [orjson.loads(r.value) for r in asyncio.run(read_topic(settings, settings.topic(WARROOM_UPDATES)))]
    heat = [w for w in warroom if w.get("type") == "heatmap"]
    kpis = [w for w in warroom if w.get("type") == "kpis"]
    assert {h["res"] for h in heat} == {3, 5}
    hub_cells = {h["cell"]: h for h in heat if h["res"] == 5 and h["stalled"] > 0}
    assert hub_cells, "no res-5 cell with stalled SKUs"
    assert all(h["region"] == "330000" for h in hub_cells.values())  # HUB-A is in Zhejiang
    last = kpis[-1]
    assert last["key"] == "national" and last["stalled"] >= 8
    assert last["skus_in_flight"] >= last["stalled"] + last["late"] + last["at_risk"]
    assert 0.0 <= last["on_time_rate"] < 1.0
    # coalesced: far fewer KPI items than batches
    assert len(kpis) <= pipeline.stats.batches // 2 + 2

    assert influx_query(settings, 'SELECT count("incident_id") FROM "incidents"')[0][1] == len(incidents)
    stalled = influx_query(settings, """SELECT sum("skus") FROM "delays" WHERE "state" = 'stalled' GROUP BY time(1m)""")
    assert any(v[1] for v in stalled)
    tagged = influx_query(settings, 'SHOW TAG VALUES FROM "sku_events" WITH KEY = "h3"')
    assert len(tagged) >= len(HUBS)

    # the engine's state in the table rebuilds it: the open incident is still there
    entries = {v.key: v.data for v in pipeline.store.values() if isinstance(v, StageValue) and v.stage == "delays"}
    restored = DelaysStage(delays.rules, delays.topics, GeoStage())
    asyncio.run(restored.restore(entries, {0, 1}))
    assert restored.engine.stats()["open_incidents"] == 1
    assert restored.engine.stats()["skus"] == delays.engine.stats()["skus"]


async def alert_on(settings: Settings, records: list[dict[str, Any]]) -> AlertingAgent:
    producer = Outbox(settings.kafka_bootstrap)
    await producer.start()
    influx = InfluxWriter(settings.influx_url, settings.influx_db, policy=replace(INFLUX_RETRY, attempts=2))
    client = httpx.AsyncClient()
    policy = load_policy()
    try:
        agent = AlertingAgent(
            policy,
            build_delivery(policy, {}, client),
            producer,
            influx,
            {},
            alerts_topic=settings.topic(ALERTS),
            changelog_topic=changelog_topic(settings, "alerting"),
        )
        for record in records:
            await agent.on_incident(record, datetime.fromisoformat(record["at"]))
        last = datetime.fromisoformat(records[-1]["at"])
        for minutes in (1, 5, 15):  # group_wait and escalation run on ticks
            await agent.tick(last + timedelta(minutes=minutes))
    finally:
        await client.aclose()
        await producer.stop()
        await influx.aclose()
    return agent


def test_incident_events_fire_one_alert(stack_settings: Settings, tmp_path: Path) -> None:
    settings = stack_settings
    asyncio.run(run_outage(settings, fast_rules(tmp_path / "sla.yaml")))
    incidents = [orjson.loads(r.value) for r in asyncio.run(read_topic(settings, settings.topic(ORDER_INCIDENTS)))]
    agent = asyncio.run(alert_on(settings, incidents))

    alerts = [orjson.loads(r.value) for r in asyncio.run(read_topic(settings, settings.topic(ALERTS)))]
    fired = [a for a in alerts if a["event"] == "fired"]
    assert len({a["alert_id"] for a in fired}) == 1, alerts
    assert fired[0]["incident_ids"] == [incidents[0]["incident_id"]]
    assert fired[0]["labels"]["kind"] == "hub_stall"  # a delay incident rooted at a hub
    # the saved state holds the engine and the outbox, and restores the same alert
    saved = agent.store["state"]
    assert set(saved) == {"engine", "outbox"}
    assert [a.alert_id for a in AlertEngine.from_dict(load_policy(), saved["engine"]).alerts()] == [
        fired[0]["alert_id"]
    ]
    assert influx_query(settings, 'SELECT count("alert_id") FROM "alert_events"')[0][1] >= 1
