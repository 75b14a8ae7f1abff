"""Load test of the customer tracking socket: many viewers, live updates, delivery latency.

    python bench/bench_tracking_ws.py [--viewers 1000] [--baseline 10] [--orders 200]
                                      [--rounds 20] [--interval 0.5]

Starts the embedded broker and one web server (the gateway with the tracking page mounted,
in its own process), grants tracking links for ``--orders`` orders on ``tracking-tokens``,
then for each viewer count (the baseline first, in the same run) opens that many real
``websockets`` clients on loopback, each subscribing to one order with its token, and
publishes ``--rounds`` rounds of ``order-updates`` (one update per order per round, all
orders in both runs, so only the number of viewers differs). Delivery latency is the time
from stamping the update (its ``updated_at``, just before it is produced to Kafka) to its
arrival at a viewer: Kafka produce, the gateway's consumer, projection, fan-out, socket.

Prints JSON and a table with p50/p95/p99 and their ratio to the baseline; writes
bench/results/tracking_ws.json. Everything is bounded: the number of rounds, and a
deadline per round after which missing messages are counted as lost.
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
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from websockets.asyncio.client import ClientConnection, connect

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from config.settings import Settings  # noqa: E402
from dashboard.gateway.record_seal import RecordSeal  # noqa: E402
from dashboard.gateway.tracking_tokens import token_digest  # noqa: E402
from orderradar.devstack.broker import EmbeddedBroker  # noqa: E402
from orderradar.devstack.process import ManagedProcess, free_port  # noqa: E402
from orderradar.devstack.waiting import async_wait_until  # noqa: E402
from stream.kafka.admin import ensure_topics  # noqa: E402
from stream.topics import ORDER_UPDATES, TRACKING_TOKENS  # noqa: E402

RESULTS = REPO / "bench" / "results" / "tracking_ws.json"
#: A round's messages must arrive within this, or they count as lost.
ROUND_DEADLINE_S = 10.0
#: Clients opening their socket at the same time (a crowd, not a SYN flood).
CONNECT_CONCURRENCY = 100


# ---- the server process ------------------------------------------------------------------


def serve() -> None:
    """``--serve``: the web server as ``orderradar web`` runs it, with the tracking page mounted."""
    import uvicorn

    from config.gateway import GatewaySettings
    from config.settings import load_settings
    from dashboard.gateway.app import create_app
    from dashboard.gateway.runtime import Gateway
    from dashboard.gateway.server import uvicorn_config
    from dashboard.tracking.page import tracking_routes

    settings = load_settings()
    options = GatewaySettings.from_settings(settings)
    gateway = Gateway(settings, options)
    app = create_app(settings, gateway=gateway, extra_routes=tracking_routes(gateway.tracking_token_valid))
    uvicorn.Server(uvicorn_config(app, settings, options, access_log=False, log_level="warning")).run()


def start_web(settings: Settings, port: int, log_dir: Path) -> ManagedProcess:
    env = {
        **os.environ,
        "ORDERRADAR_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "ORDERRADAR_TOPIC_PREFIX": settings.topic_prefix,
        "ORDERRADAR_WEB_HOST": "127.0.0.1",
        "ORDERRADAR_WEB_PORT": str(port),
        "ORDERRADAR_DATA_DIR": str(log_dir),
        # Every viewer connects from 127.0.0.1: lift the per-address cap.
        "ORDERRADAR_WS_MAX_CONNECTIONS_PER_CLIENT": "1000000",
        # grant_record seals with the same secret
        "ORDERRADAR_SESSION_SECRET": settings.session_secret.get_secret_value(),
    }
    process = ManagedProcess("web", [sys.executable, __file__, "--serve"], log_dir / "web.log", env=env, cwd=REPO)
    process.start()

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    process.wait_ready(healthy, 60)
    return process


# ---- viewers ---------------------------------------------------------------------------------


@dataclass
class Viewer:
    order_id: str
    token: str
    latencies_ms: list[float] = field(default_factory=list)
    rounds_seen: set[int] = field(default_factory=set)
    closed_by_server: int | None = None
    socket: ClientConnection | None = None


async def open_viewer(url: str, viewer: Viewer, ready: asyncio.Semaphore) -> None:
    async with ready:
        viewer.socket = await connect(url, max_size=2**20, open_timeout=30, ping_interval=None)
        await viewer.socket.send(json.dumps({"type": "subscribe", "token": viewer.token}))
        while True:  # "subscribed", then the snapshot
            message = orjson.loads(await asyncio.wait_for(viewer.socket.recv(), 30))
            if message["type"] == "snapshot":
                return
            if message["type"] == "error":
                raise RuntimeError(f"subscribe refused: {message}")


async def read_viewer(viewer: Viewer) -> None:
    assert viewer.socket is not None
    try:
        async for raw in viewer.socket:
            arrived = time.time()
            message = orjson.loads(raw)
            if message["type"] not in ("delta", "snapshot"):
                continue
            sent = datetime.fromisoformat(message["updated_at"]).timestamp()
            viewer.latencies_ms.append((arrived - sent) * 1000.0)
            viewer.rounds_seen.add(int(message["seq"]))
    except Exception:  # a dropped viewer is counted below, not fatal
        pass
    finally:
        viewer.closed_by_server = viewer.socket.close_code


# ---- the bus -----------------------------------------------------------------------------------


def grant_record(settings: Settings, token: str, order_id: str, now: datetime) -> bytes:
    """The record the gateway itself publishes when it issues a link (SHA-256 only, sealed)."""
    seal = RecordSeal(settings.session_secret, settings.topic(TRACKING_TOKENS))
    return orjson.dumps(
        seal.seal(
            {
                "type": "tracking_link_issued",
                "token_sha256": token_digest(token),
                "order_id": order_id,
                "expires_at": (now + timedelta(days=1)).isoformat(),
                "issued_by": "source:bench",
                "at": now.isoformat(),
            }
        )
    )


def order_update(order_id: str, seq: int) -> bytes:
    status = "linehaul" if seq % 2 else "hub_arrival"
    lat, lon = 31.2 + seq * 0.001, 121.4 + seq * 0.001
    return orjson.dumps(
        {
            "order_id": order_id,
            "seq": seq,
            "rollup": {"status": status},
            # Stamped last, just before producing: the latency clock starts here.
            "updated_at": datetime.now(UTC).isoformat(),
            "skus": {
                "sku-1": {
                    "status": status,
                    "qty": 1,
                    "position": {"lat": lat, "lon": lon},
                    "timeline": [
                        {"status": "paid", "event_time": "2026-11-11T08:00:00+08:00"},
                        {"status": status, "event_time": "2026-11-11T12:00:00+08:00"},
                    ],
                }
            },
        }
    )


# ---- one scenario ------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[index]


async def run_scenario(
    settings: Settings,
    port: int,
    grants: dict[str, str],
    n_viewers: int,
    rounds: int,
    interval_s: float,
    first_seq: int,
) -> dict[str, Any]:
    orders = sorted(grants)
    url = f"ws://127.0.0.1:{port}/ws/track"
    viewers = [Viewer(orders[i % len(orders)], grants[orders[i % len(orders)]]) for i in range(n_viewers)]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    t0 = time.perf_counter()
    await asyncio.gather(*(open_viewer(url, v, gate) for v in viewers))
    connect_s = time.perf_counter() - t0
    readers = [asyncio.create_task(read_viewer(v)) for v in viewers]

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=0)
    await producer.start()
    topic = settings.topic(ORDER_UPDATES)
    try:
        for round_no in range(rounds):
            seq = first_seq + round_no
            started = time.perf_counter()
            await asyncio.gather(*(producer.send(topic, key=o.encode(), value=order_update(o, seq)) for o in orders))
            await producer.flush()

            def round_done(seq: int = seq) -> bool:
                return all(seq in v.rounds_seen or v.closed_by_server is not None for v in viewers)

            with contextlib.suppress(TimeoutError):  # what is missing is counted as lost below
                await async_wait_until(round_done, ROUND_DEADLINE_S, interval=0.01, what=f"round {round_no}")
            # Pace the rounds; a slow round is not followed by a burst.
            await asyncio.sleep(max(0.0, interval_s - (time.perf_counter() - started)))
    finally:
        await producer.stop()
        for v in viewers:
            if v.socket is not None:
                await v.socket.close()
        await asyncio.gather(*readers)

    latencies = sorted(x for v in viewers for x in v.latencies_ms)
    expected = n_viewers * rounds
    seen = sum(len(v.rounds_seen & set(range(first_seq, first_seq + rounds))) for v in viewers)
    dropped = sum(1 for v in viewers if v.closed_by_server not in (None, 1000, 1001))
    return {
        "viewers": n_viewers,
        "orders": len(orders),
        "rounds": rounds,
        "updates_published": len(orders) * rounds,
        "messages_expected": expected,
        "messages_received": len(latencies),
        # A slow viewer's deltas are merged (never a backlog): a round may arrive folded
        # into the next one's message, which is not a loss.
        "rounds_delivered_pct": round(100.0 * seen / expected, 2) if expected else 0.0,
        "viewers_dropped_by_server": dropped,
        "connect_all_s": round(connect_s, 3),
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p95": round(percentile(latencies, 95), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(latencies[-1], 2) if latencies else None,
        },
    }


async def grant_links(settings: Settings, port: int, n_orders: int) -> dict[str, str]:
    """Tokens for ``n_orders`` orders, published as the gateway does, plus a first snapshot each."""
    now = datetime.now(UTC)
    grants = {f"bench-o-{i:05d}": secrets.token_urlsafe(32) for i in range(n_orders)}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        for order_id, token in grants.items():
            await producer.send(
                settings.topic(TRACKING_TOKENS),
                key=token_digest(token).encode(),
                value=grant_record(settings, token, order_id, now),
            )
            await producer.send(settings.topic(ORDER_UPDATES), key=order_id.encode(), value=order_update(order_id, 1))
        await producer.flush()
    finally:
        await producer.stop()
    last = grants[max(grants)]

    async def served() -> bool:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{port}/t/{last}")).status_code == 200

    await async_wait_until(served, 60, interval=0.1, what="the gateway to read the grants")
    return grants


def table(results: dict[str, Any]) -> str:
    rows = [("viewers", "p50 ms", "p95 ms", "p99 ms", "max ms", "delivered %", "dropped", "connect s")]
    for r in results["scenarios"]:
        lat = r["latency_ms"]
        rows.append(
            (
                str(r["viewers"]),
                f"{lat['p50']:.1f}",
                f"{lat['p95']:.1f}",
                f"{lat['p99']:.1f}",
                f"{lat['max']:.1f}",
                f"{r['rounds_delivered_pct']:.1f}",
                str(r["viewers_dropped_by_server"]),
                f"{r['connect_all_s']:.2f}",
            )
        )
    ratio = results["ratio_vs_baseline"]
    rows.append(("ratio", f"{ratio['p50']:.2f}x", f"{ratio['p95']:.2f}x", f"{ratio['p99']:.2f}x", "", "", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--baseline", type=int, default=10)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between rounds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
        workdir = Path(tmp)
        broker = EmbeddedBroker(free_port(), workdir).start()
        web: ManagedProcess | None = None
        try:
            settings = Settings(kafka_bootstrap=broker.bootstrap, topic_prefix="bench-", partitions=4, data_dir=workdir)
            ensure_topics(settings)
            port = free_port()
            web = start_web(settings, port, workdir)
            grants = asyncio.run(grant_links(settings, port, args.orders))
            scenarios = []
            seq = 2
            for n in (args.baseline, args.viewers):
                scenarios.append(asyncio.run(run_scenario(settings, port, grants, n, args.rounds, args.interval, seq)))
                seq += args.rounds
            survived = web.alive()
        finally:
            if web is not None:
                web.stop()
            broker.stop()

    base, loaded = scenarios[0]["latency_ms"], scenarios[-1]["latency_ms"]
    results = {
        "benchmark": "tracking_ws",
        "what": "delivery latency of order-updates to /ws/track viewers (publish -> viewer)",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "web_server_survived": survived,
        "scenarios": scenarios,
        "ratio_vs_baseline": {q: round(loaded[q] / base[q], 2) if base[q] else None for q in ("p50", "p95", "p99")},
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
