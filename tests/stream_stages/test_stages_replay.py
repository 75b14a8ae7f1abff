"""Event time through the running product: one worker (all stages, alerting to a real
webhook receiver), live traffic and ``orderradar import --replay`` of the same traffic a
year earlier, a gateway for ``/metrics``, InfluxDB.

(a) the replay raises the same incident (root cause, counts, times a year earlier) as the
live copy; (b) replayed orders are not forgotten when the live partitions sweep (retention
runs on the replay's clock), are not all late, and keep their per-minute aggregates; (c) the
import marks its records, the replay's alert is recorded marked replay and nothing is sent for it, while the live alert
reaches the receiver; (d) the sync lag per source is in InfluxDB and on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from stages_scenario import DOWN_HUB, Sent, fast_rules, outage_traffic

from config.settings import Settings, to_env
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from stream.contract import OrderEvent, Status
from stream.core.replay import REPLAY_HEADER
from stream.topics import ALERTS, ORDER_EVENTS, ORDER_INCIDENTS, ORDER_UPDATES, WARROOM_UPDATES, changelog_topic

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS / "stream"), str(TESTS / "alerting")]
from alerting_receivers import http_receiver  # noqa: E402
from alerting_testkit import POLICY_YAML  # noqa: E402
from stream_harness import influx_query, read_topic  # noqa: E402

from tracking.stack import WebServer  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
#: 52 weeks: the same weekday and time of day, so business-hour calendars agree.
SHIFT = timedelta(weeks=52)
REPLAY_ID = "last-year"
HOOK_TOKEN = "hookTokenZ8x7C6v5"
MAPPING = """
format: jsonl
fields:
  event_id: event_id
  order_id: order_id
  sku: sku
  status: status
  event_time: event_time
  source: source
  warehouse: warehouse
  carrier: carrier
  region: region
  channel: channel
  node: node
  lat: lat
  lon: lon
"""


def _twin(order_id: str, partitions: int) -> str:
    """An ``R...`` id in the same partition as ``order_id`` (a partition's watermark depends on
    its records, so twins must share one for the answers to be comparable)."""
    every = list(range(partitions))
    home = DefaultPartitioner()(order_id.encode(), every, every)
    n = 0
    while DefaultPartitioner()(f"R{n}-{order_id}".encode(), every, every) != home:
        n += 1
    return f"R{n}-{order_id}"


def _renamed(sent: list[Sent], shift: timedelta, partitions: int) -> list[Sent]:
    out = []
    for s in sent:
        e = s.event
        twin = _twin(e.order_id, partitions)
        out.append(
            Sent(
                e.model_copy(
                    update={
                        "order_id": twin,
                        "event_id": twin + e.event_id[len(e.order_id) :],
                        "event_time": e.event_time + shift,
                    }
                ),
                s.received + shift,
            )
        )
    return out


def _alert_config(config_dir: Path, base: str) -> dict[str, str]:
    """Every receiver of the test policy is a webhook to the local receiver; their secrets."""
    text, env = POLICY_YAML, {}
    for name in ("ops-chat", "cs-chat", "alice-pager", "bob-pager", "manager-mail"):
        secret = "hook_" + name.replace("-", "_")
        text = text.replace(f"  {name}: {{type: log", f"  {name}: {{type: webhook, url_secret: {secret}")
        env[f"ORDERRADAR_ALERT_SECRET_{secret.upper()}"] = f"{base}/{name}/{HOOK_TOKEN}"
    (config_dir / "alerting.yaml").write_text(text, encoding="utf-8")
    return env


async def _produce(settings: Settings, records: list[tuple[bytes, bytes, int | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(settings.topic(ORDER_EVENTS), value, key=key, timestamp_ms=ts)
            for key, value, ts in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _partition_count(settings: Settings) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        return len(await producer.partitions_for(settings.topic(ORDER_EVENTS)))
    finally:
        await producer.stop()


def _order_in_each_partition(prefix: str, partitions: int) -> dict[int, str]:
    found: dict[int, str] = {}
    every = list(range(partitions))
    n = 0
    while len(found) < partitions:
        order_id = f"{prefix}{n}"
        found.setdefault(DefaultPartitioner()(order_id.encode(), every, every), order_id)
        n += 1
    return found


def _event(order_id: str, n: int, status: Status, at: datetime, source: str = "test") -> OrderEvent:
    return OrderEvent(
        event_id=f"{order_id}-{n}",
        order_id=order_id,
        sku="SKU1",
        status=status,
        event_time=at,
        source=source,
        region="Zhejiang",
        channel="tmall",
    )


def _values(settings: Settings, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in asyncio.run(read_topic(settings, topic)) if r.value]


def test_replay_answers_like_live_is_kept_pages_no_one_and_sync_lag_is_measured(
    stack_settings: Settings, tmp_path: Path
) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(stack_settings.config_dir, config_dir)
    fast_rules(config_dir / "sla.yaml")
    settings = stack_settings.model_copy(update={"config_dir": config_dir})
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    live = outage_traffic(now - timedelta(hours=4), minutes=235, outage_after=100)
    partitions = asyncio.run(_partition_count(settings))
    history = _renamed(live, -SHIFT, partitions)
    export = tmp_path / "last_year.jsonl"
    export.write_bytes(b"".join(orjson.dumps(s.event.model_dump(mode="json")) + b"\n" for s in history))
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    # per partition, a live order closed 8 days ago: its tombstone shows that partition swept
    old = _order_in_each_partition("OLD", partitions)
    eight_days = now - timedelta(days=8)
    old_events = [
        _event(o, n, s, eight_days + timedelta(hours=n), "backfill")
        for o in old.values()
        for n, s in enumerate((Status.PAID, Status.PACKED, Status.DELIVERED))
    ]

    with http_receiver(b"{}") as (base, script):
        env = {**os.environ, **to_env(settings), **_alert_config(config_dir, base), "PYTHONUNBUFFERED": "1"}
        worker = ManagedProcess(
            "worker", [sys.executable, "-m", "orderradar.cli", "worker"], tmp_path / "worker.log", env=env, cwd=REPO
        ).start()
        web = WebServer(settings, tmp_path).start()
        try:
            asyncio.run(_produce(settings, [(s.key, s.value, int(s.received.timestamp() * 1000)) for s in live]))
            imported = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "orderradar.cli",
                    "import",
                    str(export),
                    "--mapping",
                    str(tmp_path / "mapping.yaml"),
                    "--replay",
                    "--replay-id",
                    REPLAY_ID,
                ],
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert imported.returncode == 0, imported.stderr
            imported_at = time.monotonic()

            # (c) the import marks every record it produced
            records = asyncio.run(read_topic(settings, settings.topic(ORDER_EVENTS)))
            replayed = [r for r in records if r.key and r.key.startswith(b"R")]
            assert len(replayed) == len(history)
            assert all(dict(r.headers).get(REPLAY_HEADER) == REPLAY_ID.encode() for r in replayed)
            assert not any(REPLAY_HEADER in dict(r.headers) for r in records if not r.key.startswith(b"R"))

            def opened() -> dict[str | None, dict[str, Any]] | None:
                found: dict[str | None, dict[str, Any]] = {}
                for r in _values(settings, settings.topic(ORDER_INCIDENTS)):
                    if r.get("event") == "incident.opened":
                        found.setdefault(r.get("replay"), r)
                return found if len(found) == 2 else None

            try:
                first = wait_until(opened, timeout=120, interval=1.0, what="a live and a replayed incident")
            except TimeoutError:
                raise AssertionError(worker.log_tail(40)) from None
            assert isinstance(first, dict)
            # (a) the same incident, a year earlier
            live_inc, replay_inc = first[None], first[REPLAY_ID]
            assert replay_inc["root_cause"] == live_inc["root_cause"] and live_inc["root_cause"]["hub"] == DOWN_HUB
            assert replay_inc["incident_id"] != live_inc["incident_id"]
            for field in ("counts", "dimension", "state", "lift", "share"):
                assert replay_inc[field] == live_inc[field], field
            for field in ("opened_at", "first_seen", "at"):
                moved = datetime.fromisoformat(replay_inc[field]) + SHIFT
                assert moved == datetime.fromisoformat(live_inc[field]), field

            # (c) both alerts are recorded; only the live one reaches the receiver
            def alerts() -> list[dict[str, Any]] | None:
                found = _values(settings, settings.topic(ALERTS))
                fired = [a for a in found if a["event"] == "fired"]
                delivered = [a for a in found if a["event"] == "delivered"]
                return found if len(fired) >= 2 and delivered else None

            try:
                recorded = wait_until(alerts, timeout=120, interval=1.0, what="two fired alerts and a delivery")
            except TimeoutError:
                raise AssertionError(worker.log_tail(40)) from None
            assert isinstance(recorded, list)
            fired = {a["alert_id"]: a for a in recorded if a["event"] == "fired"}
            replay_alerts = {i for i, a in fired.items() if a["labels"].get("replay") == REPLAY_ID}
            assert (
                len(replay_alerts) == 1
                and replay_inc["incident_id"] in fired[next(iter(replay_alerts))]["incident_ids"]
            )
            assert "replay=last-year" in fired[next(iter(replay_alerts))]["detail"]
            sending = {"notified", "escalated", "delivered", "delivery_failed", "delivery_abandoned"}
            assert not [a for a in recorded if a["alert_id"] in replay_alerts and a["event"] in sending]
            bodies = [json.loads(r["body"]) for r in script.requests]
            assert bodies and all(replay_inc["incident_id"] not in json.dumps(b) for b in bodies)
            assert any(live_inc["incident_id"] in json.dumps(b) for b in bodies)

            # (b) sweeps of every partition (shown by the 8-day-old live orders' tombstones)
            # forget no replayed order: they age in the replay's own time
            changelog = changelog_topic(settings, "orders")
            asyncio.run(_produce(settings, [(e.order_id.encode(), e.to_json(), None) for e in old_events]))

            def swept() -> bool:
                # a trickle of live records drives the per-partition sweep (every 60 s of batches)
                trickle = _order_in_each_partition(f"T{int(time.monotonic())}-", partitions)
                stamp = datetime.now(UTC) - timedelta(seconds=30)
                asyncio.run(
                    _produce(
                        settings,
                        [
                            (o.encode(), _event(o, 0, Status.PAID, stamp, "trickle").to_json(), None)
                            for o in trickle.values()
                        ],
                    )
                )
                gone = {r.key.decode() for r in asyncio.run(read_topic(settings, changelog)) if r.value is None}
                return set(old.values()) <= gone

            try:
                wait_until(swept, timeout=240, interval=3.0, what="every partition swept its expired orders")
            except TimeoutError:
                raise AssertionError(worker.log_tail(40)) from None
            assert time.monotonic() - imported_at >= 60
            tombstones = [r for r in asyncio.run(read_topic(settings, changelog)) if r.value is None]
            assert not [r.key for r in tombstones if r.key.startswith(b"R")]
            snapshots = [
                u for u in _values(settings, settings.topic(ORDER_UPDATES)) if u.get("order_id", "").startswith("R")
            ]
            assert snapshots and all(u["extensions"]["replay"] == {"id": REPLAY_ID} for u in snapshots)

            # ... its per-minute aggregates, though far behind the live partitions' window
            counted = influx_query(settings, 'SELECT sum("count") FROM "throughput" WHERE time < now() - 300d')
            assert counted and int(counted[0][1]) == len(history)

            # ... and the replay's own KPIs: its time range, not all late
            kpis = [
                w
                for w in _values(settings, settings.topic(WARROOM_UPDATES))
                if w.get("type") == "kpis" and w.get("key") == f"replay:{REPLAY_ID}"
            ]
            assert kpis, "no KPIs for the replay"
            last = kpis[-1]
            assert datetime.fromisoformat(last["from"]) == history[0].event.event_time
            assert datetime.fromisoformat(last["at"]) <= max(s.event.event_time for s in history)
            assert 0 < last["stalled"] + last["late"] < last["skus_in_flight"]

            # (d) sync lag: in InfluxDB per arrival minute (the live traffic arrived 2 s after
            # it happened), and on /metrics (the trickle, 30 s late, in the recent window)
            rows = influx_query(settings, 'SELECT "p50_s", "p99_s", "count" FROM "sync_lag" WHERE "source" = \'test\'')
            # one point per partition and arrival minute
            assert rows and sum(int(r[3]) for r in rows) == len(live)
            assert all(abs(float(r[1]) - 2.0) < 0.05 and abs(float(r[2]) - 2.0) < 0.05 for r in rows)

            def metrics() -> dict[str, float] | None:
                text = httpx.get(f"{web.url}/metrics", timeout=10).text
                found = {
                    line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("orderradar_source_sync_lag_seconds{")
                }
                return found if any('source="trickle"' in k for k in found) else None

            found = wait_until(metrics, timeout=90, interval=1.0, what="sync lag on /metrics")
            assert isinstance(found, dict)
            p50 = found['quantile="0.5",source="trickle"']
            assert 29.0 < p50 < 40.0 and found['quantile="0.99",source="trickle"'] >= p50
        finally:
            web.stop()
            worker.stop()
