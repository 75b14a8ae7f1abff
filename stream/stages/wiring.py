"""How the worker gets the stages of this package: the pipeline stages and the alerting agent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import ValidationError

from alerting.channels.http import make_client
from alerting.delivery import DeliveryStage
from alerting.policy import load_policy
from config.client_auth import kafka_auth
from config.settings import Settings
from stream.core.global_views import ViewsTopics
from stream.core.sla import load_sla_rules
from stream.kafka.zone_feed import ZoneFeed
from stream.sinks.customer_notices import build_channels as build_notice_channels
from stream.sinks.customer_notices import load_notice_config
from stream.sinks.influx import InfluxWriter
from stream.sinks.outbox import Outbox
from stream.stage_api import Stage
from stream.stages.agent_records import agent_table, install_json_agent, raw_topic
from stream.stages.alerting_agent import AlertingAgent, build_delivery
from stream.stages.delays_stage import DelaysStage, DelaysTopics
from stream.stages.disruption_stage import DisruptionStage, DisruptionTopics
from stream.stages.geo_stage import GeoStage
from stream.stages.geofence_stage import GeofenceStage
from stream.stages.notice_stage import NoticeStage
from stream.stages.outcome_stage import OutcomeStage
from stream.topics import (
    ALERT_INPUTS,
    ALERTS,
    CONTROL,
    ORDER_EVENTS_DLQ,
    ORDER_INCIDENTS,
    WARROOM_PARTIALS,
    WARROOM_UPDATES,
    WARROOM_VIEWS_TABLE,
    changelog_topic,
)

log = logging.getLogger(__name__)

ALERTING_TABLE = "alerting"
ALERTING_AGENT = "orderradar.alerting"
#: Wall-clock period of the alert engine's tick (group flushes, escalations, expiry).
ALERT_TICK_S = 15.0


def worker_stages(settings: Settings) -> list[Stage]:
    """Geo enrichment, geofences (enter/dwell/exit, hub arrivals by GPS), delays/incidents
    (which forwards incidents to alerting), the disruption zones declared by operators, then
    each order's outcome point."""
    rules = load_sla_rules(settings.config_dir / "sla.yaml")
    geo = GeoStage(rules.data_quality.delivered_away_m)
    views = ViewsTopics(
        settings.topic(WARROOM_PARTIALS),
        settings.partitions,
        changelog_topic(settings, WARROOM_VIEWS_TABLE),
        settings.topic(ORDER_EVENTS_DLQ),
    )
    topics = DelaysTopics(
        settings.topic(ORDER_INCIDENTS), settings.topic(WARROOM_UPDATES), settings.topic(ALERT_INPUTS), views
    )
    zones = ZoneFeed(settings.kafka_bootstrap, settings.topic(CONTROL), security=kafka_auth(settings))
    disruption_topics = DisruptionTopics(settings.topic(ORDER_INCIDENTS), settings.topic(ALERT_INPUTS))
    fences = GeofenceStage(
        geo, settings.config_dir / "geofences.yaml", customer_area_m=settings.geofence_customer_area_m
    )
    return [
        geo,
        fences,
        DelaysStage(rules, topics, geo),
        notice_stage(settings),
        DisruptionStage(geo, zones, disruption_topics),
        OutcomeStage(rules),
    ]


def notice_stage(settings: Settings) -> NoticeStage:
    """Customer delay notices through the alerting channels (none configured by default)."""
    config = load_notice_config(settings.customer_notices_file or settings.config_dir / "customer_notices.yaml")
    secrets = settings.receiver_secrets()
    channels = build_notice_channels(config, secrets, make_client())
    return NoticeStage(DeliveryStage(channels, secrets=secrets.values()), list(channels), config.language)


def install_alerting(
    app: Any,
    settings: Settings,
    producer: Outbox,
    influx: InfluxWriter,
    on_fatal: Callable[[BaseException], None],
    tick_s: float = ALERT_TICK_S,
) -> AlertingAgent:
    """Register the alerting agent, its one-partition table and its timer on a Faust app."""
    policy = load_policy(settings.config_dir / "alerting.yaml")
    inputs_name, control_name = settings.topic(ALERT_INPUTS), settings.topic(CONTROL)
    source = raw_topic(app, inputs_name, control_name, partitions=1)
    table = agent_table(app, ALERTING_TABLE, changelog_topic(settings, ALERTING_TABLE), 1)
    store = table.data.data
    assert isinstance(store, dict), "the alerting agent expects Faust's memory:// store"
    delivery = build_delivery(policy, settings.receiver_secrets(), httpx.AsyncClient())
    agent = AlertingAgent(
        policy,
        delivery,
        producer,
        influx,
        store,
        alerts_topic=settings.topic(ALERTS),
        changelog_topic=changelog_topic(settings, ALERTING_TABLE),
    )
    lock = asyncio.Lock()
    dlq_topic = settings.topic(ORDER_EVENTS_DLQ)

    async def handle(message: Any, value: Any) -> None:
        async with lock:
            now = datetime.now(UTC)
            if message.topic == inputs_name:
                await agent.on_incident(value, now)
            else:
                await agent.on_command(value, now)

    install_json_agent(
        app,
        source,
        ALERTING_AGENT,
        handle,
        refused=(ValidationError, KeyError, TypeError, ValueError),
        problem=lambda exc: f"{type(exc).__name__}: {exc}",
        producer=producer,
        dlq_topic=dlq_topic,
        on_fatal=on_fatal,
    )

    async def tick() -> None:
        if not any(tp.topic == inputs_name for tp in app.consumer.assignment()):
            return  # another worker owns the engine
        try:
            async with lock:
                await agent.tick(datetime.now(UTC))
        except Exception as exc:
            log.critical("alerting tick failed; stopping", exc_info=exc)
            on_fatal(exc)
            raise

    app.timer(tick_s)(tick)
    return agent


__all__ = ["install_alerting", "worker_stages"]
