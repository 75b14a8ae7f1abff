"""1,000 tracking clients while 10 stop reading: the rest stay fast, memory stays bounded.

The gateway runs as ``orderradar web`` in its own process (so its RSS is its own), the test
plays the worker (publishing ``order-updates``) and the customers (real ``websockets``
clients). Ten "stuck" clients watch the busiest orders with a 4 KiB receive buffer and
never read; the gateway must close them and keep every other client's p99 latency (from
the worker's ``updated_at`` to the client's receive) under 500 ms.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from config.settings import Settings
from gateway.harness import (
    SkuPlan,
    UpdateFeeder,
    answers_ready,
    order_snapshot,
    publish_updates,
    stuck_client,
    web_process,
)
from orderradar.devstack.process import free_port
from orderradar.devstack.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "oms-" + "k" * 40
NORMAL_ORDERS = 97
HOT_ORDERS = 10
#: Fast clients per normal order and per hot order; each hot order also has one stuck client.
NORMAL_WATCHERS = 10
HOT_WATCHERS = 2
PUBLISH_S = 8.0
TICK_S = 0.1
HOT_SKUS = 6
LAST_MILE = ["paid", "picked", "packed", "outbound_scan", "linehaul", "hub_arrival", "out_for_delivery"]


def snapshot(order_id: str, seq: int, hot: bool) -> dict[str, Any]:
    skus = {f"s{i}": SkuPlan(LAST_MILE if hot else LAST_MILE[: 2 + seq % 4]) for i in range(HOT_SKUS if hot else 1)}
    # Out for delivery, the courier's position changes every update: every SKU changes.
    return order_snapshot(order_id, seq, skus, datetime.now(UTC), extra=seq)


class FastClient:
    def __init__(self, url: str, token: str, order_id: str) -> None:
        self.url, self.token, self.order_id = url, token, order_id
        self.latencies: list[float] = []
        self.last_seq = 0
        self.closed_early = False

    async def run(self, connected: asyncio.Event, measuring: list[bool]) -> None:
        async with websockets.connect(self.url, open_timeout=30, max_size=2**20) as ws:
            await ws.send(orjson.dumps({"type": "subscribe", "token": self.token}).decode())
            await ws.recv()  # subscribed
            await ws.recv()  # empty snapshot (seq 0)
            connected.set()
            try:
                async for raw in ws:
                    received = time.time()
                    message = orjson.loads(raw)
                    if message["type"] in ("delta", "snapshot") and message.get("updated_at"):
                        self.last_seq = message["seq"]
                        if measuring[0]:
                            sent = datetime.fromisoformat(message["updated_at"]).timestamp()
                            self.latencies.append(received - sent)
            except ConnectionClosed:
                self.closed_early = True


def metric(base: str, line_prefix: str) -> float:
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_slow_readers_are_dropped_without_slowing_1000_others(stack_settings: Settings, tmp_path: Path) -> None:
    # Every client connects from 127.0.0.1: lift the per-address cap above their number.
    settings = stack_settings.with_overrides(ingest_keys={"oms": KEY}, ws_max_connections_per_client=2000)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = web_process(
        settings,
        port,
        tmp_path,
        ws_max_lag_s=2.0,
        ws_socket_send_buffer=16384,
        ws_write_buffer_bytes=8192,
        ingest_rate_per_s=1000,
        ingest_burst=1000,
    ).start()
    try:
        process.wait_ready(answers_ready(base), 30)
        gateway = psutil.Process(process.pid)
        normal = [f"n-{i}" for i in range(NORMAL_ORDERS)]
        hot = [f"h-{i}" for i in range(HOT_ORDERS)]
        # The orders as the worker publishes them after the OMS's first events (seq 0).
        publish_updates(
            settings,
            [order_snapshot(o, 0, {"s0": SkuPlan(["paid"], position=None)}, source="oms") for o in normal + hot],
        )
        with httpx.Client(base_url=base, timeout=30, headers={"X-Source": "oms", "X-Api-Key": KEY}) as client:

            def issued(order_id: str) -> str | None:  # once the process has read the order
                response = client.post("/api/v1/tracking-links", json={"order_id": order_id})
                return str(response.json()["token"]) if response.status_code == 201 else None

            tokens = {o: str(wait_until(lambda o=o: issued(o), 30, what=f"link for {o}")) for o in normal + hot}
        # The load generator holds 1,000 connections too: keep its own GC pauses out of the
        # measured latencies, as `orderradar web` does for the gateway (tune_garbage_collector).
        thresholds = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, *thresholds[1:])
        try:
            result = asyncio.run(_load(settings, port, tokens, normal, hot, gateway))
        finally:
            gc.unfreeze()
            gc.set_threshold(*thresholds)
    finally:
        process.stop()

    latencies = sorted(result["latencies"])
    p99 = latencies[int(len(latencies) * 0.99)]
    summary = (
        f"{len(latencies)} deliveries to {result['fast']} fast clients: "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms; stuck clients closed: {result['stuck_closed']} "
        f"(metric {result['slow_metric']:g}); fast clients dropped {result['fast_dropped']}, behind "
        f"{result['fast_behind']}; gateway RSS {result['rss_base'] / 2**20:.0f} MiB -> peak "
        f"{result['rss_peak'] / 2**20:.0f} MiB"
    )
    print("\n" + summary)
    assert result["fast"] + HOT_ORDERS == 1000
    assert len(latencies) > 4_000, summary
    assert p99 < 0.5, summary
    assert result["fast_dropped"] == 0 and result["fast_behind"] == 0, summary
    assert result["stuck_closed"] == HOT_ORDERS and result["slow_metric"] == HOT_ORDERS, summary
    assert result["rss_peak"] - result["rss_base"] < 50 * 2**20, summary


async def _load(
    settings: Any, port: int, tokens: dict[str, str], normal: list[str], hot: list[str], gateway: psutil.Process
) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{port}/ws/track"
    base = f"http://127.0.0.1:{port}"
    measuring = [False]
    fast = [FastClient(url, tokens[o], o) for o in normal for _ in range(NORMAL_WATCHERS)]
    fast += [FastClient(url, tokens[o], o) for o in hot for _ in range(HOT_WATCHERS)]
    connected = [asyncio.Event() for _ in fast]
    gate = asyncio.Semaphore(100)

    async def start(client: FastClient, event: asyncio.Event) -> None:
        async with gate:
            task = asyncio.create_task(client.run(event, measuring))
            tasks.append(task)
            await event.wait()

    tasks: list[asyncio.Task[None]] = []
    async with asyncio.timeout(60):
        await asyncio.gather(*(start(c, e) for c, e in zip(fast, connected, strict=False)))
    stuck = [await stuck_client(port, tokens[o]) for o in hot]
    assert metric(base, 'orderradar_gateway_ws_clients{endpoint="track"}') == len(fast) + len(stuck)

    rss_base = gateway.memory_info().rss
    rss_peak = rss_base
    seqs = {o: 0 for o in normal + hot}
    async with UpdateFeeder(settings) as feeder:
        measuring[0] = True
        started = time.monotonic()
        tick = 0
        while time.monotonic() - started < PUBLISH_S:
            # Normal orders at 0.5 update/s each, hot orders at 10 updates/s each (~150/s in
            # all, ~700 deliveries/s): enough to fill a stuck client's buffers in seconds.
            for order_id in hot + normal[tick % 20 :: 20]:
                seqs[order_id] += 1
                await feeder.publish(snapshot(order_id, seqs[order_id], order_id in hot), wait=False)
            await feeder.flush()
            tick += 1
            rss_peak = max(rss_peak, gateway.memory_info().rss)
            await asyncio.sleep(max(0.0, started + tick * TICK_S - time.monotonic()))  # pacing, not waiting

        async def settled() -> bool:
            return all(c.last_seq == seqs[c.order_id] for c in fast)

        deadline = time.monotonic() + 20
        while not await settled() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        measuring[0] = False
    slow_metric = await asyncio.to_thread(
        metric, base, 'orderradar_gateway_ws_slow_disconnects_total{endpoint="track"}'
    )
    rss_peak = max(rss_peak, gateway.memory_info().rss)

    # The stuck clients must find their connection closed by the server once they read again.
    stuck_closed = 0
    for ws in stuck:
        try:
            async with asyncio.timeout(20):
                async for _ in ws:
                    pass
            stuck_closed += 1
        except ConnectionClosed:  # aborted: no close frame could get through
            stuck_closed += 1
        except TimeoutError:
            pass
        finally:
            await ws.close()

    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "latencies": [x for c in fast for x in c.latencies],
        "fast": len(fast),
        "fast_dropped": sum(c.closed_early for c in fast),
        "fast_behind": sum(c.last_seq != seqs[c.order_id] for c in fast),
        "stuck_closed": stuck_closed,
        "slow_metric": slow_metric,
        "rss_base": rss_base,
        "rss_peak": rss_peak,
    }
