"""The worker process (``orderradar worker``) with the geo, delays and alerting stages:
a hub outage on ``order-events`` gives one incident naming the hub on ``order-incidents``,
heatmap and KPI items on ``warroom-updates`` and a fired alert on ``alerts``."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from stages_scenario import DOWN_HUB, fast_rules, outage_traffic, produce_sent
from stream_harness import read_topic, start_worker

from config.settings import Settings
from orderradar.devstack.waiting import wait_until
from stream.topics import ALERTS, ORDER_INCIDENTS, WARROOM_UPDATES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


async def produce_outage(settings: Settings) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await produce_sent(settings, outage_traffic(now - timedelta(hours=4), minutes=235, outage_after=100))


async def read_values(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Every record value of ``topic`` so far, decoded (until each partition's high watermark)."""
    return [orjson.loads(r.value) for r in await read_topic(settings, topic) if r.value]


def test_worker_hub_outage_incident_warroom_and_alert(stack_settings: Settings, tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(stack_settings.config_dir, config_dir)
    fast_rules(config_dir / "sla.yaml")
    settings = stack_settings.model_copy(update={"config_dir": config_dir})
    worker = start_worker(settings, tmp_path / "worker.log", core_only=False)
    try:
        asyncio.run(produce_outage(settings))

        def incidents() -> list[dict[str, Any]]:
            return asyncio.run(read_values(settings, settings.topic(ORDER_INCIDENTS)))

        def fired() -> list[dict[str, Any]]:
            return [a for a in asyncio.run(read_values(settings, settings.topic(ALERTS))) if a["event"] == "fired"]

        try:
            wait_until(incidents, timeout=90, interval=0.5, what="an incident on order-incidents")
            wait_until(fired, timeout=60, interval=0.5, what="a fired alert on alerts")
        except TimeoutError:
            raise AssertionError(worker.log_tail(40)) from None
        found = incidents()
        assert {r["incident_id"] for r in found} == {found[0]["incident_id"]}
        assert found[0]["root_cause"]["hub"] == DOWN_HUB
        alerts = fired()
        assert {a["incident_ids"][0] for a in alerts} == {found[0]["incident_id"]}

        def warroom_shows_the_stall() -> bool:
            # Published on the war-room interval: it may follow the alert by a moment.
            warroom = asyncio.run(read_values(settings, settings.topic(WARROOM_UPDATES)))
            return any(w.get("type") == "heatmap" and w["stalled"] > 0 for w in warroom) and any(
                w.get("type") == "kpis" and w["key"] == "national" for w in warroom
            )

        wait_until(
            warroom_shows_the_stall,
            timeout=90,
            interval=0.5,
            what="a heatmap cell with stalled SKUs and the national KPIs on warroom-updates",
        )
    finally:
        worker.stop()
