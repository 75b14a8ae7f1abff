"""Global war-room views through real ``orderradar worker`` processes: one worker, two and
four workers sharing the partitions, fed the same traffic, show the war-room (the gateway's
own :class:`~dashboard.gateway.warroom_state.WarroomState` over ``warroom-updates``) the
same national KPIs and heatmap cells, and those KPIs count the SKUs the traffic leaves in
flight. With several workers each publishes the partials of its own partitions on
``warroom-partials`` and the owners sum them (``stream.core.global_views``); a record there that
is not a partial is dead-lettered."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from stages_scenario import Sent, fast_rules, outage_traffic
from stream_harness import read_topic

from config.settings import Settings, to_env
from dashboard.gateway.warroom_state import WarroomState, item_of_warroom_record
from orderradar.devstack.isolation import isolated_settings
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from stream.contract import CLOSED
from stream.topics import ORDER_EVENTS, ORDER_EVENTS_DLQ, WARROOM_PARTIALS, WARROOM_UPDATES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
RECOVERED = re.compile(r"state recovered: \d+ orders in partitions \[([\d, ]*)\]")
WORKERS = (1, 2, 4)


async def _produce(settings: Settings, topic: str, sent: list[tuple[bytes, bytes, int]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key, timestamp_ms=ms) for key, value, ms in sent]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def warroom_views(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the gateway shows: the national KPIs (without their time) and the non-empty cells."""
    state = WarroomState(history=10, items_per_channel=100_000)
    for record in asyncio.run(read_topic(settings, settings.topic(WARROOM_UPDATES))):
        obj = orjson.loads(record.value)
        state.apply(*item_of_warroom_record(record.key, obj), obj)
    kpis = {k: v for k, v in (state.get("kpis", "national") or {}).items() if k != "at"}
    cells = {item["key"]: item for item in state.items("heatmap") if item["skus"]}
    return kpis, cells


def owned_partitions(worker: ManagedProcess) -> set[int] | None:
    """The partitions of the worker's last restore (``None``: not restored yet)."""
    found = RECOVERED.findall(worker.log_path.read_text(errors="replace")) if worker.log_path.exists() else []
    return {int(p) for p in found[-1].split(",") if p.strip()} if found else None


def in_flight(sent: list[Sent]) -> tuple[int, int]:
    """SKUs (and orders) whose newest event leaves them open."""
    last: dict[tuple[str, str], Sent] = {}
    for s in sent:
        key = (s.event.order_id, s.event.sku)
        if key not in last or s.event.event_time >= last[key].event.event_time:
            last[key] = s
    open_skus = [k for k, s in last.items() if s.event.status not in CLOSED]
    return len(open_skus), len({order for order, _ in open_skus})


def test_one_two_and_four_workers_show_the_same_views(broker: Any, influx: Any, tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(REPO / "config", config_dir)
    fast_rules(config_dir / "sla.yaml")
    runs = {
        n: isolated_settings(broker.bootstrap, influx.url, influx.root.parent, config_dir=config_dir) for n in WORKERS
    }
    workers: dict[int, list[ManagedProcess]] = {n: [] for n in WORKERS}
    processes: list[ManagedProcess] = []
    try:
        for n, settings in runs.items():
            env = {**os.environ, **to_env(settings), "PYTHONUNBUFFERED": "1"}
            for i in range(n):
                process = ManagedProcess(
                    f"worker-{n}-{i}",
                    [sys.executable, "-m", "orderradar.cli", "worker"],
                    tmp_path / f"worker-{n}-{i}.log",
                    env=env,
                    cwd=REPO,
                )
                processes.append(process.start())
                workers[n].append(process)
        every = set(range(runs[1].partitions))

        def split(owned: list[set[int] | None]) -> bool:
            """Every partition owned by exactly one of the workers, each owning some."""
            return (
                all(owned)
                and sum(len(o or ()) for o in owned) == len(every)
                and set().union(*(o or set() for o in owned)) == every
            )

        def settled() -> bool:
            for process in processes:
                if not process.alive():
                    raise AssertionError(f"{process.name} exited:\n{process.log_tail(40)}")
            return all(split([owned_partitions(w) for w in ws]) for ws in workers.values())

        # Traffic only once the workers split the partitions: a partition moved later would
        # lose its SKUs' positions (they are learnt from traffic) and the heatmap with them.
        wait_until(settled, timeout=240, interval=0.5, what="each run's workers splitting the partitions")
        now = datetime.now(UTC).replace(microsecond=0)
        sent = outage_traffic(now - timedelta(hours=4), minutes=235, outage_after=100)
        records = [(s.key, s.value, int(s.received.timestamp() * 1000)) for s in sent]
        for settings in runs.values():
            asyncio.run(_produce(settings, settings.topic(ORDER_EVENTS), records))
        skus, orders = in_flight(sent)
        views: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}

        def counted_and_equal() -> bool:
            for n, settings in runs.items():
                views[n] = warroom_views(settings)
            return all(v[0].get("skus_in_flight") == skus for v in views.values()) and all(
                views[n] == views[1] for n in WORKERS
            )

        try:
            wait_until(
                counted_and_equal,
                timeout=240,
                interval=2.0,
                what=f"both runs' national KPIs counting the {skus} SKUs in flight, and equal views",
            )
        except TimeoutError:
            raise AssertionError("\n".join(f"{n} workers: {views.get(n)}" for n in WORKERS)) from None
        kpis, cells = views[4]
        print(f"{skus} SKUs in flight; KPIs {kpis}; {len(cells)} cells")
        assert kpis["orders_in_flight"] == orders
        assert kpis["stalled"] > 0, "the outage's stalled SKUs are counted"
        assert sum(c["skus"] for c in cells.values() if c["res"] == 5) <= skus
        assert any(c["stalled"] for c in cells.values()), "the outage's hub cell shows its stalled SKUs"
        # Every partition's partials were published (each worker's for its own partitions).
        partials = runs[4].topic(WARROOM_PARTIALS)
        assert {orjson.loads(r.value)["source"] for r in asyncio.run(read_topic(runs[4], partials))} == every

        # A record on warroom-partials that is not a partial goes to the dead-letter topic.
        asyncio.run(_produce(runs[4], partials, [(b"national", b'{"kind": "total"}', 0)]))

        def dead_lettered() -> list[Any]:
            return [
                r
                for r in asyncio.run(read_topic(runs[4], runs[4].topic(ORDER_EVENTS_DLQ)))
                if b"total" in (r.value or b"")
            ]

        wait_until(dead_lettered, timeout=60, interval=0.5, what="the bad partial on order-events-dlq")
        assert all(w.alive() for w in workers[4])
    finally:
        for process in processes:
            process.stop()
