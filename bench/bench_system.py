"""The whole system under load: end-to-end latency, memory, InfluxDB writes, crash recovery, a flash sale.

    .venv/bin/python bench/bench_system.py            # full run (several minutes)
    .venv/bin/python bench/bench_system.py --smoke    # tiny sizes: checks the harness

One stack, started here on free loopback ports: the embedded broker, ``influxd``, the web
gateway (``orderradar web``) and the stream worker (``orderradar worker``, every stage), all
real processes. Traffic is the simulator's (``orderradar.simulator``): a pool of events of
orders placed at 1M orders/day, replayed with fresh order ids per pass and stamped with the
wall-clock time just before each record is produced (``event_time``), so "now - event_time"
is the age of an event anywhere in the pipeline. Phases, in order (numbers are issue #10's):

- sustained [2, 5]: a backlog of ``--load-replicas`` passes of the pool is produced, the
  worker drains it; events/s = ``sku_events`` points per second after the producer
  finished (the worker alone on the machine), InfluxDB points/s from influxd's own
  ``/debug/vars`` write counter over the same interval (every measurement, not just events);
- memory [4]: the worker's VmRSS before the backlog and after it (all those SKUs in flight)
  gives bytes per in-flight SKU; VmHWM (peak RSS) of every process at the end;
- recovery [6]: ``kill -9`` of that worker, a new one started at once with a probe event
  produced; recovery = restart -> the probe's point is in InfluxDB (the dead member's session
  must expire, the table is rebuilt from its changelog, the uncommitted tail is replayed);
- latency [3]: tracked orders get links from ``POST /api/v1/tracking-links`` (API key), a
  WebSocket client per order subscribes on ``/ws/track``; traffic is paced at 50% and 90%
  of the sustained rate with each tracked order moving once a second; latency = arrival of
  the delta on the socket - the ``updated_at`` it carries (the produce stamp);
- burst [7]: 1M orders/day in events/s (simulator's events per order), then 47x for
  ``--burst-s``, then the baseline again; committed offsets of the worker's group against
  the end offsets of ``order-events`` are sampled twice a second: lag in events, lag in
  seconds (age of the oldest unprocessed record) and the time to catch up after the burst.

Prints JSON and writes ``bench/results/system.json``. The traffic, producer, observer and
processes it drives are in ``system_stack.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_pipeline import Stack  # noqa: E402  (same directory: the stack)
from system_stack import (  # noqa: E402  (same directory: traffic, producer, observer, processes)
    ORDERS_PER_DAY,
    SESSION_TIMEOUT_S,
    SOURCE,
    TRACK_ROUTE,
    Observer,
    Processes,
    Producer,
    Tracked,
    Traffic,
    check_alive,
    plain_event,
    probe,
)

from config.settings import Settings  # noqa: E402
from orderradar.devstack.process import free_port  # noqa: E402
from orderradar.devstack.waiting import async_wait_until, wait_until  # noqa: E402
from orderradar.simulator import events_per_second_for  # noqa: E402

RESULTS = REPO / "bench" / "results" / "system.json"
BURST_FACTOR = 47


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)

    return {"n": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 1)}


# ---- the phases ----------------------------------------------------------------------------


async def sustained_and_memory(
    producer: Producer, observer: Observer, procs: Processes, traffic: Traffic, passes: int, timeout: float
) -> dict[str, Any]:
    """[2, 4, 5]: drain a backlog of in-flight SKUs; rates, and the worker's RSS before/after."""
    await probe(producer, observer, procs, timeout)  # the worker has joined and writes
    before = procs.worker_memory()["VmRSS"]
    points0 = observer.sku_points()
    count = passes * len(traffic.pool)
    await producer.backlog(traffic, count)
    # The clock starts once the producer is done: the worker alone drains the rest.
    t0, p0, w0 = time.monotonic(), observer.sku_points(), observer.influx_points_written()

    def drained() -> bool:
        check_alive(procs)
        return observer.sku_points() >= points0 + count

    await asyncio.to_thread(wait_until, drained, timeout, 0.2, "the backlog to drain")
    seconds = time.monotonic() - t0
    written = observer.influx_points_written() - w0
    after = procs.worker_memory()["VmRSS"]
    in_flight = passes * traffic.in_flight_per_pass
    return {
        "sustained": {
            "events": count,
            "drained_after_producer": points0 + count - p0,
            "seconds": round(seconds, 2),
            "events_per_s": round((points0 + count - p0) / seconds, 1),
        },
        "influx": {
            "points_written": written,
            "seconds": round(seconds, 2),
            "points_per_s": round(written / seconds, 1),
            "sku_event_points_per_s": round((points0 + count - p0) / seconds, 1),
        },
        "state": {
            "in_flight_skus": in_flight,
            "worker_rss_before": before,
            "worker_rss_after": after,
            "bytes_per_in_flight_sku": round((after - before) / in_flight, 1) if in_flight else None,
        },
    }


async def recovery(
    producer: Producer, observer: Observer, procs: Processes, in_flight: int, timeout: float
) -> dict[str, Any]:
    """[6]: kill -9 the worker holding the SKUs, start a new one, time until a probe is written."""
    procs.kill9_worker()
    started = time.monotonic()
    procs.start_worker()
    probe_s = await probe(producer, observer, procs, timeout)
    recovered = time.monotonic() - started
    return {
        "in_flight_skus": in_flight,
        "session_timeout_s": SESSION_TIMEOUT_S,
        "restart_to_probe_written_s": round(recovered, 2),
        "probe_wait_s": round(probe_s, 2),
        "worker_rss_after_recovery": procs.worker_memory()["VmRSS"],
    }


async def issue_links(producer: Producer, settings: Settings, key: str, order_ids: list[str]) -> list[Tracked]:
    """As an OMS does: each order's first event, then its link once the web tier knows the
    order (links are issued only for known orders, by a source only for its own)."""
    for order_id in order_ids:
        await producer.send(plain_event(order_id, 0, TRACK_ROUTE[0]))
    await producer.kafka.flush()
    base = f"http://127.0.0.1:{settings.web_port}"
    headers = {"X-Source": SOURCE, "Authorization": f"Bearer {key}"}
    out = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
        for order_id in order_ids:

            async def issued(order_id: str = order_id) -> httpx.Response | None:
                response = await client.post("/api/v1/tracking-links", json={"order_id": order_id})
                return None if response.status_code == 404 else response

            response = await async_wait_until(issued, 120, 0.1, f"a tracking link for {order_id}")
            assert isinstance(response, httpx.Response)
            response.raise_for_status()
            out.append(Tracked(order_id, response.json()["token"], sent=1))
    return out


async def subscribe(url: str, tracked: Tracked) -> None:
    tracked.socket = await connect(url, open_timeout=30, ping_interval=None)
    await tracked.socket.send(orjson.dumps({"type": "subscribe", "token": tracked.token}).decode())
    while True:  # "subscribed", then the snapshot
        message = orjson.loads(await asyncio.wait_for(tracked.socket.recv(), 30))
        if message["type"] == "snapshot":
            return
        if message["type"] == "error":
            raise RuntimeError(f"subscribe refused: {message}")


async def read_deltas(tracked: Tracked) -> None:
    assert tracked.socket is not None
    try:
        async for raw in tracked.socket:
            arrived = time.time()
            message = orjson.loads(raw)
            if message.get("type") == "delta" and message.get("updated_at"):
                stamped = datetime.fromisoformat(message["updated_at"]).timestamp()
                tracked.latencies_ms.append((arrived - stamped) * 1000.0)
                tracked.last_seen = max(tracked.last_seen, stamped)
    except Exception:  # a closed socket ends the reader; missing deltas show in n
        pass


async def latency_at(
    producer: Producer,
    observer: Observer,
    procs: Processes,
    traffic: Traffic,
    key: str,
    rate: float,
    seconds: float,
    n_tracked: int,
    label: str,
) -> dict[str, Any]:
    """[3]: produce -> worker -> order-updates -> gateway -> /ws/track, at a paced rate."""
    settings = procs.settings
    tracked = await issue_links(producer, settings, key, [f"track-{label}-{i:03d}" for i in range(n_tracked)])
    url = f"ws://127.0.0.1:{settings.web_port}/ws/track"
    await asyncio.gather(*(subscribe(url, t) for t in tracked))
    readers = [asyncio.create_task(read_deltas(t)) for t in tracked]
    try:
        pacing = await producer.paced(traffic, rate, seconds, tracked)
        # The tail: every tracked order's last event delivered (past the deadline: lost).
        with contextlib.suppress(TimeoutError):
            await async_wait_until(lambda: all(t.last_seen >= t.last_sent - 1e-6 for t in tracked), 60, 0.1)
        await drain(observer, procs, 300)
    finally:
        for t in tracked:
            if t.socket is not None:
                await t.socket.close()
        await asyncio.gather(*readers)
    latencies = [x for t in tracked for x in t.latencies_ms]
    return {
        "load": label,
        **pacing,
        "tracked_orders": n_tracked,
        "tracked_events": sum(t.sent for t in tracked),
        "deltas_received": len(latencies),
        "latency_ms": percentiles(latencies),
    }


async def drain(observer: Observer, procs: Processes, timeout: float) -> None:
    """Wait until the worker's committed offsets reach the end of ``order-events``."""

    def caught_up() -> bool:
        check_alive(procs)
        done, end = observer.lag()
        return done >= end

    await asyncio.to_thread(wait_until, caught_up, timeout, 0.25, "the worker to catch up")


def caught_up_threshold(calm_lag_s: float) -> float:
    """Lag (s) counted as caught up: twice the worst lag before the burst, at least 1 s
    (offsets are committed every few seconds, so a lag of about that size is the floor)."""
    return max(1.0, 2 * calm_lag_s)


async def burst(
    producer: Producer,
    observer: Observer,
    procs: Processes,
    traffic: Traffic,
    burst_s: float,
    calm_s: float,
    timeout: float,
) -> dict[str, Any]:
    """[7]: baseline, 47x for ``burst_s``, baseline again; lag sampled until caught up."""
    base = events_per_second_for(ORDERS_PER_DAY)
    samples: list[dict[str, float]] = []
    stop = asyncio.Event()
    t0 = time.monotonic()

    async def sample() -> None:
        while not stop.is_set():
            done, end = await asyncio.to_thread(observer.lag)
            now = time.monotonic()
            # The oldest unprocessed record was produced when the total reached ``done`` + 1.
            at = producer.produced_at(done + 1) if done < end else None
            samples.append(
                {
                    "t": round(now - t0, 2),
                    "lag_events": end - done,
                    "lag_s": round(now - at, 2) if at is not None else 0.0,
                }
            )
            await asyncio.sleep(0.5)  # sampling interval of the measurement

    sampler = asyncio.create_task(sample())
    try:
        before = await producer.paced(traffic, base, calm_s)
        burst_start = time.monotonic() - t0
        peak = await producer.paced(traffic, base * BURST_FACTOR, burst_s)
        burst_end = time.monotonic() - t0
        after_start = time.monotonic()
        after = {}
        # Baseline traffic goes on until the lag is back to its pre-burst level (or the deadline).
        while time.monotonic() - after_start < timeout:
            after = await producer.paced(traffic, base, 2.0)
            calm_lag = max((s["lag_s"] for s in samples if s["t"] < burst_start), default=0.0)
            recent = [s for s in samples if s["t"] > burst_end + 1]
            if recent and recent[-1]["lag_s"] <= caught_up_threshold(calm_lag):
                break
            check_alive(procs)
    finally:
        stop.set()
        await sampler
    calm_lag = max((s["lag_s"] for s in samples if s["t"] < burst_start), default=0.0)
    threshold = caught_up_threshold(calm_lag)
    behind = [s for s in samples if s["t"] >= burst_start]
    # Caught up: the first sample after the worst one (and after the burst) back under the
    # threshold; later jitter of the commit interval does not move it.
    worst = max(behind, key=lambda s: s["lag_s"], default={"t": burst_end})
    caught = next((s for s in behind if s["t"] > max(worst["t"], burst_end) and s["lag_s"] <= threshold), None)
    return {
        "events_per_order": round(base * 86_400 / ORDERS_PER_DAY, 2),
        "baseline_rate": round(base, 1),
        "burst_rate_target": round(base * BURST_FACTOR, 1),
        "burst_factor": BURST_FACTOR,
        "before": before,
        "burst": peak,
        "after": after,
        "max_lag_events": max((s["lag_events"] for s in behind), default=0),
        "max_lag_s": max((s["lag_s"] for s in behind), default=0.0),
        "pre_burst_max_lag_s": calm_lag,
        "caught_up_threshold_s": threshold,
        "catch_up_s": round(caught["t"] - burst_end, 2) if caught else None,
        "caught_up": caught is not None,
        "samples": samples,
    }


# ---- main ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    pool: int
    load_passes: int
    latency_s: float
    tracked: int
    burst_s: float
    calm_s: float
    timeout: float


FULL = Sizes(pool=20_000, load_passes=3, latency_s=30, tracked=20, burst_s=10, calm_s=10, timeout=600)
SMOKE = Sizes(pool=1_000, load_passes=1, latency_s=4, tracked=4, burst_s=1, calm_s=2, timeout=180)


def stack_settings(stack: Stack, key: str) -> Settings:
    settings = stack.settings(8)
    return settings.with_overrides(ingest_keys={SOURCE: key}, web_host="127.0.0.1", web_port=free_port())


async def run_phases(procs: Processes, key: str, sizes: Sizes) -> dict[str, Any]:
    traffic = await asyncio.to_thread(Traffic.simulated, sizes.pool)
    observer = Observer(procs.settings)
    producer = Producer(procs.settings)
    await producer.start()
    try:
        procs.start_worker()
        loaded = await sustained_and_memory(producer, observer, procs, traffic, sizes.load_passes, sizes.timeout)
        in_flight = loaded["state"]["in_flight_skus"]
        recovered = await recovery(producer, observer, procs, in_flight, sizes.timeout)
        await drain(observer, procs, sizes.timeout)
        rate = loaded["sustained"]["events_per_s"]
        latency = [
            await latency_at(
                producer,
                observer,
                procs,
                traffic,
                key,
                rate * share,
                sizes.latency_s,
                sizes.tracked,
                f"{round(share * 100)}pct",
            )
            for share in (0.5, 0.9)
        ]
        flash = await burst(producer, observer, procs, traffic, sizes.burst_s, sizes.calm_s, sizes.timeout)
        peaks = procs.peaks()
    finally:
        await producer.stop()
        observer.close()
    return {
        **loaded,
        "recovery": recovered,
        "latency": latency,
        "burst": flash,
        "peak_rss": peaks,
        "traffic": {
            "pool_events": len(traffic.pool),
            "in_flight_skus_per_pass": traffic.in_flight_per_pass,
            "orders_per_day_profile": ORDERS_PER_DAY,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check the harness, not the speed")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    load_start = os.getloadavg()
    key = secrets.token_urlsafe(24)
    stack = Stack(None, None)
    procs = Processes(stack, stack_settings(stack, key))
    try:
        procs.start_web()
        result = asyncio.run(run_phases(procs, key, sizes))
    finally:
        procs.stop()
    result = {
        "benchmark": "system",
        "smoke": args.smoke,
        "sizes": sizes.__dict__,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_start": load_start,
            "load_avg_end": os.getloadavg(),
        },
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "burst"}, indent=2))
    print(json.dumps({k: v for k, v in result["burst"].items() if k != "samples"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
