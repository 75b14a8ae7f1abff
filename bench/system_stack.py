"""The system benchmark's stack and the tools that drive and watch it (``bench_system.py``).

Traffic (the simulator's events replayed with new ids, stamped at produce time), a paced
producer of ``order-events``, an observer (InfluxDB counts, influxd's write counter, the
worker group's lag) and the stack's processes (web, worker) with their memory from /proc.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from websockets.asyncio.client import ClientConnection

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_pipeline import Stack, child  # noqa: E402  (same directory: the stack and the child helper)

from config.settings import Settings  # noqa: E402
from orderradar.devstack.process import ManagedProcess  # noqa: E402
from orderradar.devstack.waiting import wait_until  # noqa: E402
from orderradar.simulator.generator import TrafficGenerator, TrafficProfile  # noqa: E402
from stream.contract import CLOSED, Status  # noqa: E402
from stream.kafka.batch_source import source_group  # noqa: E402
from stream.topics import ORDER_EVENTS  # noqa: E402

SESSION_TIMEOUT_S = 6.0
SOURCE = "bench"
ORDERS_PER_DAY = 1_000_000
#: Route of a tracked order: the first statuses once, then hub to hub forever (legal loop),
#: so every event changes what the customer sees and the gateway sends a delta.
TRACK_ROUTE = (Status.PAID, Status.PICKED, Status.PACKED, Status.OUTBOUND_SCAN)
TRACK_LOOP = (Status.LINEHAUL, Status.HUB_ARRIVAL)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


# ---- memory of the processes (from /proc: no sampling thread, the kernel keeps the peak) ----


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in bytes."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


# ---- traffic: the simulator's events, replayed with new ids and stamped at produce time ----


@dataclass
class Traffic:
    """An endless record source: passes over a pool of simulator events, new ids per pass."""

    pool: list[dict[str, Any]]
    in_flight_per_pass: int
    passes: int = 0
    index: int = 0

    @classmethod
    def simulated(cls, events: int, seed: int = 2026) -> Traffic:
        profile = TrafficProfile(orders_per_day=ORDERS_PER_DAY, diurnal=False)
        pool: list[dict[str, Any]] = []
        last: dict[tuple[str, str], Status] = {}
        for emission in TrafficGenerator(seed, datetime.now(UTC), profile):
            event = emission.event
            pool.append(event.model_dump(mode="json", exclude_none=True))
            last[(event.order_id, event.sku)] = event.status
            if len(pool) >= events:
                break
        return cls(pool, sum(1 for status in last.values() if status not in CLOSED))

    def next_record(self) -> tuple[bytes, bytes]:
        template = self.pool[self.index]
        suffix = f".p{self.passes}"
        order_id = template["order_id"] + suffix
        value = {**template, "order_id": order_id, "event_id": template["event_id"] + suffix, "event_time": now_iso()}
        self.index += 1
        if self.index == len(self.pool):
            self.index, self.passes = 0, self.passes + 1
        return order_id.encode(), orjson.dumps(value)


def plain_event(order_id: str, n: int, status: Status, stamp: datetime | None = None) -> tuple[bytes, bytes]:
    """A minimal valid event stamped now (probes and tracked orders)."""
    value = {
        "v": 1,
        "event_id": f"{order_id}-{n}",
        "order_id": order_id,
        "sku": "SKU-1",
        "qty": 1,
        "status": status.value,
        "event_time": (stamp or datetime.now(UTC)).isoformat(),
        "source": SOURCE,
        "lat": 31.0 + n * 0.013,
        "lon": 121.0 + n * 0.013,
    }
    return order_id.encode(), orjson.dumps(value)


# ---- producing at a paced rate ---------------------------------------------------------------


@dataclass
class Tracked:
    """One tracked order: its link, its socket and the latencies of the deltas it received."""

    order_id: str
    token: str
    sent: int = 0
    next_due: float = 0.0
    #: Produce stamp of the last event sent, and the newest ``updated_at`` received.
    last_sent: float = 0.0
    last_seen: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    socket: ClientConnection | None = None

    def next_status(self) -> Status:
        if self.sent < len(TRACK_ROUTE):
            return TRACK_ROUTE[self.sent]
        return TRACK_LOOP[(self.sent - len(TRACK_ROUTE)) % len(TRACK_LOOP)]


class Producer:
    """Paced producer of ``order-events``; remembers (time, total produced) for lag in seconds."""

    TICK_S = 0.01

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic(ORDER_EVENTS)
        self.kafka = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, linger_ms=5, max_batch_size=256 * 1024
        )
        self.total = 0
        self.times: list[float] = []
        self.totals: list[int] = []

    async def start(self) -> None:
        await self.kafka.start()

    async def stop(self) -> None:
        await self.kafka.stop()

    async def send(self, record: tuple[bytes, bytes]) -> None:
        await self.kafka.send(self.topic, key=record[0], value=record[1])
        self.total += 1

    def mark(self) -> None:
        self.times.append(time.monotonic())
        self.totals.append(self.total)

    def produced_at(self, total: int) -> float | None:
        """When the ``total``-th record had been produced (None: not yet)."""
        i = bisect.bisect_left(self.totals, total)
        return self.times[i] if i < len(self.times) else None

    async def backlog(self, traffic: Traffic, count: int) -> None:
        for _ in range(count):
            await self.send(traffic.next_record())
        await self.kafka.flush()
        self.mark()

    async def paced(
        self,
        traffic: Traffic,
        rate: float,
        seconds: float,
        tracked: Sequence[Tracked] = (),
        track_interval_s: float = 1.0,
    ) -> dict[str, float]:
        """``rate`` records/s for ``seconds`` (tracked orders' events included in the rate)."""
        started = time.monotonic()
        first = self.total
        for t in tracked:
            t.next_due = started
        while (elapsed := time.monotonic() - started) < seconds:
            now = time.monotonic()
            for t in tracked:
                if now >= t.next_due:
                    stamp = datetime.now(UTC)
                    await self.send(plain_event(t.order_id, t.sent, t.next_status(), stamp))
                    t.last_sent = stamp.timestamp()
                    t.sent += 1
                    t.next_due += track_interval_s
            due = int(rate * elapsed) - (self.total - first)
            for _ in range(max(0, due)):
                await self.send(traffic.next_record())
            self.mark()
            await asyncio.sleep(self.TICK_S)  # pacing of the producer, not a wait for a result
        await self.kafka.flush()
        self.mark()
        wall = time.monotonic() - started
        return {
            "target_rate": round(rate, 1),
            "achieved_rate": round((self.total - first) / wall, 1),
            "seconds": round(wall, 2),
            "records": self.total - first,
        }


# ---- observing the stack -------------------------------------------------------------------


class Observer:
    """InfluxDB counts, influxd's write counter and the worker group's lag."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
        topic = settings.topic(ORDER_EVENTS)
        self.partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]

    def close(self) -> None:
        self.admin.close()
        self.consumer.close()

    def query(self, q: str) -> list[Any]:
        response = httpx.get(
            f"{self.settings.influx_url}/query", params={"db": self.settings.influx_db, "q": q}, timeout=30
        )
        series = response.json()["results"][0].get("series")
        return list(series[0]["values"]) if series else []

    def sku_points(self) -> int:
        values = self.query('SELECT count("event_id") FROM "sku_events"')
        return int(values[0][1]) if values else 0

    def has_event(self, event_id: str) -> bool:
        return bool(
            self.query(f'SELECT count("qty") FROM "sku_events" WHERE time > now() - 1h AND "event_id" = \'{event_id}\'')
        )

    def influx_points_written(self) -> int:
        """influxd's own counter of points received by /write (every measurement)."""
        return int(
            httpx.get(f"{self.settings.influx_url}/debug/vars", timeout=10).json()["write"]["values"]["pointReq"]
        )

    def lag(self) -> tuple[int, int]:
        """(committed, end) offsets of ``order-events`` summed over partitions."""
        group = source_group(self.settings)
        committed = self.admin.list_group_offsets({group: self.partitions}).get(group, {})
        ends = self.consumer.end_offsets(self.partitions)
        done = sum(max(0, meta.offset) for meta in committed.values() if meta is not None)
        return done, sum(ends.values())


# ---- the stack's processes -----------------------------------------------------------------


@dataclass
class Processes:
    stack: Stack
    settings: Settings
    web: ManagedProcess | None = None
    worker: ManagedProcess | None = None
    #: Peak RSS of every worker incarnation, read just before it stopped or was killed.
    worker_peaks: list[int] = field(default_factory=list)

    def start_web(self) -> None:
        self.web = child(
            "web", [sys.executable, "-m", "orderradar.cli", "web", "--no-access-log"], self.settings, self.stack.dir
        )
        url = f"http://127.0.0.1:{self.settings.web_port}/healthz"

        def healthy() -> bool:
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self.web.wait_ready(healthy, 90)

    def start_worker(self) -> None:
        self.worker = child(
            "worker",
            [
                sys.executable,
                "-m",
                "orderradar.cli",
                "worker",
                "--session-timeout",
                str(SESSION_TIMEOUT_S),
                "--no-influx-replay",
            ],
            self.settings,
            self.stack.dir,
        )

    def worker_memory(self) -> dict[str, int]:
        assert self.worker is not None
        return proc_memory(self.worker.pid)

    def kill9_worker(self) -> None:
        assert self.worker is not None
        self.worker_peaks.append(self.worker_memory()["VmHWM"])
        self.worker.kill9()

    def peaks(self) -> dict[str, int]:
        """Peak RSS (VmHWM) of each component, bytes; the worker's over all its incarnations."""
        out = {}
        components: list[tuple[str, ManagedProcess | None]] = [
            ("broker", self.stack.broker.process if self.stack.broker else None),
            ("influxd", self.stack.influx.process if self.stack.influx else None),
            ("web", self.web),
        ]
        for name, proc in components:
            if proc is not None and proc.alive():
                out[name] = proc_memory(proc.pid)["VmHWM"]
        if self.worker is not None and self.worker.alive():
            self.worker_peaks.append(self.worker_memory()["VmHWM"])
        out["worker"] = max(self.worker_peaks, default=0)
        return out

    def stop(self) -> None:
        for proc in (self.worker, self.web):
            if proc is not None:
                proc.stop()
        self.stack.stop()


def check_alive(procs: Processes) -> None:
    for proc in (procs.worker, procs.web):
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} died; log {proc.log_path}:\n{proc.log_tail(30)}")


async def probe(producer: Producer, observer: Observer, procs: Processes, timeout: float) -> float:
    """Produce one new event; seconds until its point is in InfluxDB."""
    order_id = f"probe-{uuid.uuid4().hex[:10]}"
    started = time.monotonic()
    await producer.send(plain_event(order_id, 0, Status.PAID))
    await producer.kafka.flush()

    def visible() -> bool:
        check_alive(procs)
        return observer.has_event(f"{order_id}-0")

    try:
        await asyncio.to_thread(wait_until, visible, timeout, 0.1, f"probe {order_id} in InfluxDB")
    except TimeoutError:
        dump_worker_tasks(procs)
        raise
    return time.monotonic() - started


def dump_worker_tasks(procs: Processes) -> None:
    """A stuck worker's asyncio tasks and threads, into its log (mode's Worker dumps them on
    SIGUSR1), so that a timeout leaves the evidence of what it was waiting for."""
    worker = procs.worker
    if worker is None or not worker.alive():
        return
    size = worker.log_path.stat().st_size
    worker.signal(signal.SIGUSR1)
    # On timeout the loop itself is blocked: the dump cannot run, which is evidence too.
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: worker.log_path.stat().st_size > size, 10, 0.1, "the worker's task dump")
    print(f"worker tasks dumped into {worker.log_path}", file=sys.stderr)
