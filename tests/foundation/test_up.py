"""``orderradar up`` end to end: the stack answers, events flow, a crashed worker is
restarted, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from kafka import KafkaConsumer, TopicPartition

from config.settings import Settings, to_env
from orderradar.devstack.process import ManagedProcess, free_port
from orderradar.devstack.waiting import wait_until
from stream.topics import ORDER_EVENTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _events_on_topic(settings: Settings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        topic = settings.topic(ORDER_EVENTS)
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def _influx_points(settings: Settings) -> int:
    try:
        body = httpx.get(
            f"{settings.influx_url}/query",
            params={"db": settings.influx_db, "q": "SELECT count(event_id) FROM sku_events"},
            timeout=5,
        ).json()
    except (httpx.HTTPError, ValueError):
        return 0
    series = body["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def _worker_pid(up_pid: int) -> int | None:
    for child in psutil.Process(up_pid).children():
        try:
            if "worker" in child.cmdline():
                return child.pid
        except psutil.NoSuchProcess:
            continue
    return None


def test_up_serves_flows_restarts_a_crashed_worker_and_stops_cleanly(tmp_path: Path) -> None:
    settings = Settings(
        broker_port=free_port(),
        influx_port=free_port(),
        web_port=free_port(),
        data_dir=tmp_path,
    )
    settings = settings.with_overrides(
        kafka_bootstrap=f"127.0.0.1:{settings.broker_port}",
        influx_url=f"http://127.0.0.1:{settings.influx_port}",
    )
    env = {**os.environ, **to_env(settings)}
    up = ManagedProcess(
        "up", [sys.executable, "-m", "orderradar.cli", "up", "--rate", "100"], tmp_path / "up.log", env=env
    ).start()
    family: list[psutil.Process] = []
    try:
        web = f"http://127.0.0.1:{settings.web_port}"
        up.wait_ready(lambda: _ok(f"{web}/healthz") and _ok(f"{web}/"), timeout=90)
        # broker, influxd, worker, web and (started once the web answers) the simulator
        family = wait_until(
            lambda: len(kids := psutil.Process(up.pid).children()) >= 5 and kids,
            30,
            what="five children of orderradar up",
        )  # type: ignore[assignment]
        family = psutil.Process(up.pid).children(recursive=True)
        wait_until(lambda: _events_on_topic(settings) > 0, 90, what="simulator events on order-events")
        wait_until(lambda: _influx_points(settings) > 0, 90, what="sku_events points in InfluxDB")

        # A crashed worker is restarted by the stack, and the flow goes on.
        worker = next(p for p in family if "worker" in p.cmdline())
        worker.kill()
        wait_until(lambda: _worker_pid(up.pid) not in (None, worker.pid), 60, what="a new worker process")
        points = _influx_points(settings)
        wait_until(lambda: _influx_points(settings) > points, 120, what="points from the restarted worker")
        assert up.alive()
        family = psutil.Process(up.pid).children(recursive=True)
    except BaseException:
        print(up.log_tail(60))
        raise
    finally:
        # Ctrl-C: SIGINT to `orderradar up` alone; it must stop its whole family.
        os.kill(up.pid, signal.SIGINT)
        assert up.proc is not None
        up.proc.wait(timeout=60)
    gone, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, f"left behind: {[(p.pid, p.name()) for p in alive]}"
    assert "stopped." in up.log_tail(5)
