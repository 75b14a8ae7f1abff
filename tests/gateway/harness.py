"""Test harness for the gateway: a real uvicorn server on a free port, a worker stand-in
publishing ``order-updates``, and small client helpers (httpx, websockets)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import httpx
import orjson
import uvicorn
from aiokafka import AIOKafkaProducer

from config.gateway import GatewaySettings
from config.settings import Settings
from dashboard.gateway.app import create_app
from dashboard.gateway.runtime import Gateway, utc_now
from dashboard.gateway.server import uvicorn_config
from dashboard.gateway.staff import Role, StaffDirectory, StaffUser, hash_password
from orderradar.devstack.process import free_port
from orderradar.devstack.waiting import wait_until
from stream.topics import ORDER_UPDATES

PASSWORDS = {"manager": "pw-manager-0001", "oncall": "pw-oncall-0001", "viewer": "pw-viewer-0001"}
ROLES = {"manager": "manager", "oncall": "on-call", "viewer": "viewer"}
#: An alert as the alerting agent publishes it when it fires.
FIRED = {
    "record_id": "a-1/r0",
    "alert_id": "a-1",
    "event": "fired",
    "at": "2026-11-11T10:00:00+00:00",
    "tier": "P2",
    "labels": {"kind": "hub_stall", "region": "east"},
    "incident_ids": ["inc-1"],
}
T0 = datetime(2026, 11, 11, 8, 0, tzinfo=UTC)


def ingest_event(n: int, **changes: Any) -> dict[str, Any]:
    """Event ``n`` as the WMS posts it to the ingest API; a change to ``None`` leaves the field out."""
    base = {
        "event_id": f"e-{n}",
        "order_id": f"o-{n}",
        "sku": "sku-1",
        "status": "paid",
        "event_time": "2026-11-11T10:00:00+08:00",
        "source": "wms",
        "warehouse": "SH-1",
        **changes,
    }
    return {k: v for k, v in base.items() if v is not None}


def build_staff() -> StaffDirectory:
    return StaffDirectory(
        {name: StaffUser(role=Role(ROLES[name]), password=hash_password(pw)) for name, pw in PASSWORDS.items()}
    )


class RunningGateway:
    """One gateway instance served by uvicorn in a background thread (its own event loop)."""

    def __init__(
        self,
        settings: Settings,
        options: GatewaySettings,
        staff: StaffDirectory,
        clock: Callable[[], datetime] | None = None,
        **app_parts: Any,
    ) -> None:
        self.port = free_port()
        self.settings = settings.with_overrides(web_host="127.0.0.1", web_port=self.port)
        self.gateway = Gateway(self.settings, options, staff=staff, clock=clock or utc_now)
        self.app = create_app(self.settings, gateway=self.gateway, **app_parts)
        config = uvicorn_config(self.app, self.settings, options, access_log=False, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"gateway-{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def origin(self) -> str:
        return self.base_url

    def start(self, timeout: float = 30.0) -> Self:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout, what="uvicorn start")
        gateway = self.gateway
        guard = self.server.config.app.guard  # the WebEdge's session guard
        wait_until(
            lambda: (
                gateway.publisher.connected
                and gateway.updates.assigned
                and gateway.grants.caught_up
                and guard.not_ready() is None
            ),
            timeout,
            what="gateway producer and readers",
        )
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "gateway server thread did not stop"

    def metric(self, name: str, **labels: str) -> float:
        """One sample from GET /metrics (0 when absent)."""
        text = httpx.get(f"{self.base_url}/metrics", timeout=10).text
        wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@contextmanager
def running_gateways(
    settings: Settings,
    staff: StaffDirectory,
    count: int = 1,
    clock: Callable[[], datetime] | None = None,
    **options: Any,
) -> Iterator[list[RunningGateway]]:
    base = {"ws_first_message_timeout_s": 5.0, **options}
    servers = [
        RunningGateway(settings, GatewaySettings.from_settings(settings, **base), staff, clock) for _ in range(count)
    ]
    started: list[RunningGateway] = []
    try:
        for server in servers:
            started.append(server.start())
        yield servers
    finally:
        for server in started:
            server.stop()


def login(client: httpx.Client, user: str) -> httpx.Response:
    return client.post("/api/v1/login", json={"username": user, "password": PASSWORDS[user]})


def session_cookie(client: httpx.Client) -> str:
    return f"orderradar_session={client.cookies['orderradar_session']}"


def issue_link(base_url: str, order_id: str, user: str = "manager", ttl: int | None = None) -> dict[str, Any]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        assert login(client, user).status_code == 200
        body: dict[str, Any] = {"order_id": order_id}
        if ttl is not None:
            body["ttl"] = ttl
        response = client.post("/api/v1/tracking-links", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())


# -- the worker stand-in: full order snapshots with a per-order seq ----------------------


@dataclass
class SkuPlan:
    statuses: list[str]
    node: str = "HUB-SECRET-7"
    device_id: str = "PDA-0042"
    position: tuple[float, float] | None = (31.234567, 121.475432)


def order_snapshot(
    order_id: str,
    seq: int,
    skus: Mapping[str, SkuPlan],
    updated_at: datetime | None = None,
    extra: int = 0,
    source: str = "wms",
) -> dict[str, Any]:
    """What the worker publishes: internal fields included (the gateway must hide them)."""
    out: dict[str, Any] = {}
    for sku, plan in skus.items():
        timeline = [
            {
                "event_id": f"{order_id}-{sku}-{i}",
                "status": status,
                "event_time": (T0 + timedelta(minutes=i)).isoformat(),
                "node": plan.node,
                "source": source,
                "device_id": plan.device_id,
                "flags": ["late_scan"],
                "note": "staff: customer rude on phone",
            }
            for i, status in enumerate(plan.statuses)
        ]
        state: dict[str, Any] = {
            "status": plan.statuses[-1],
            "stage_times": {s: e["event_time"] for s, e in zip(plan.statuses, timeline, strict=False)},
            "timeline": timeline,
            "node": plan.node,
            "device_id": plan.device_id,
            "staff_note": "call before delivery",
        }
        if plan.position is not None:
            lat, lon = plan.position
            state["position"] = {"lat": lat + extra * 1e-4, "lon": lon + extra * 1e-4}
        out[sku] = state
    status = next(iter(skus.values())).statuses[-1]
    return {
        "order_id": order_id,
        "seq": seq,
        "rollup": {
            "status": status,
            "late": False,
            "owner": "ops-team-3",
            "summary": {"en": f"all items {status}", "zh-CN": f"全部 {status}"},
        },
        "skus": out,
        "updated_at": (updated_at or datetime.now(UTC)).isoformat(),
    }


class UpdateFeeder:
    """Publishes ``order-updates`` like the worker does (key = order_id)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=1)

    async def __aenter__(self) -> UpdateFeeder:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def publish(self, snapshot: Mapping[str, Any], wait: bool = True) -> None:
        topic = self.settings.topic(ORDER_UPDATES)
        future = await self.producer.send(topic, orjson.dumps(snapshot), key=str(snapshot["order_id"]).encode())
        if wait:
            await future

    async def publish_json(self, logical_topic: str, key: str, value: Mapping[str, Any]) -> None:
        await self.producer.send_and_wait(self.settings.topic(logical_topic), orjson.dumps(value), key=key.encode())

    async def flush(self) -> None:
        await self.producer.flush()


def publish_updates(settings: Settings, snapshots: Sequence[Mapping[str, Any]]) -> None:
    """Publish worker snapshots on ``order-updates`` and wait for the broker's acks."""

    async def publish() -> None:
        async with UpdateFeeder(settings) as feeder:
            for snapshot in snapshots:
                await feeder.publish(snapshot, wait=False)
            await feeder.flush()

    asyncio.run(publish())


def known_orders(servers: Sequence[RunningGateway], *order_ids: str, source: str | None = None) -> None:
    """Make ``order_ids`` known to the web tier as the worker would (links are issued only
    for known orders, and by a source only for orders it sent events for): a seq-0
    snapshot without items, or with one ``paid`` item from ``source`` when the test issues
    links as that source. Waits until every server has them."""

    publish_updates(
        servers[0].settings,
        [
            order_snapshot(order_id, 0, {"seed": SkuPlan(["paid"], position=None)}, source=source)
            if source is not None
            else {"order_id": order_id, "seq": 0, "skus": {}}
            for order_id in order_ids
        ],
    )
    for server in servers:
        wait_until(
            lambda server=server: all(server.gateway.orders.get(o) is not None for o in order_ids),
            30,
            what=f"orders known on {server.base_url}",
        )


# -- a customer client that checks the /ws/track protocol as it goes ----------------------


class TrackState:
    """Applies /ws/track messages like a browser would, asserting the seq chain."""

    def __init__(self) -> None:
        self.seq: int | None = None
        self.view: dict[str, Any] | None = None
        self.kinds: list[str] = []
        self.steps: list[tuple[int | None, int]] = []  # (from_seq, seq) of every state change

    def apply(self, message: Mapping[str, Any]) -> None:
        kind = message["type"]
        self.kinds.append(kind)
        assert isinstance(message.get("seq"), int), message
        header = {
            k: v for k, v in message.items() if k not in ("type", "order_id", "seq", "from_seq", "skus", "removed")
        }
        if kind == "snapshot":
            self.view = {**header, "skus": message["skus"]}
            self.steps.append((None, message["seq"]))
            self.seq = message["seq"]
        elif kind == "delta":
            assert self.view is not None and message["from_seq"] == self.seq, (message["from_seq"], self.seq)
            skus = {k: v for k, v in self.view["skus"].items() if k not in message["removed"]}
            skus.update(message["skus"])
            self.view = {**header, "skus": skus}
            self.steps.append((message["from_seq"], message["seq"]))
            self.seq = message["seq"]
        elif kind == "error":
            raise AssertionError(f"server error: {message}")


async def subscribe_track(
    url: str, token: str, last_seq: int | None = None, origin: str | None = None, order_id: str | None = None
) -> Any:
    """An open /ws/track connection that has sent its subscribe message."""
    import websockets

    headers = {"Origin": origin} if origin else None
    ws = await websockets.connect(url, additional_headers=headers, open_timeout=10)
    message: dict[str, Any] = {"type": "subscribe", "token": token}
    if last_seq is not None:
        message["last_seq"] = last_seq
    if order_id is not None:
        message["order_id"] = order_id
    await ws.send(orjson.dumps(message).decode())
    return ws


async def receive(ws: Any, timeout: float = 15.0) -> dict[str, Any]:
    import asyncio

    raw = await asyncio.wait_for(ws.recv(), timeout)
    return dict(orjson.loads(raw))


def cached_seq(server: RunningGateway, order_id: str) -> int | None:
    entry = server.gateway.orders.get(order_id)
    return entry.seq if entry is not None else None


async def follow_until(ws: Any, state: TrackState, seq: int, timeout: float = 20.0) -> None:
    """Apply messages until the state reaches ``seq``."""
    import asyncio

    async with asyncio.timeout(timeout):
        while state.seq is None or state.seq < seq:
            state.apply(await receive(ws, timeout))


def read_topic(
    settings: Settings, logical_topic: str, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 20.0
) -> list[dict[str, Any]]:
    """Every JSON record of a topic from the beginning, until ``until(records)`` holds."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def consume() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
        )
        await consumer.start()
        topic = settings.topic(logical_topic)
        try:
            await consumer.topics()
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            records: list[dict[str, Any]] = []
            async with asyncio.timeout(timeout):
                while not until(records):
                    for batch in (await consumer.getmany(timeout_ms=200)).values():
                        records.extend(orjson.loads(r.value) for r in batch if r.value)
            return records
        finally:
            await consumer.stop()

    return asyncio.run(consume())


def answers_ready(base: str) -> Callable[[], bool]:
    """A ``wait_ready`` check: the gateway at ``base`` answers ``/readyz`` with 200."""

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def web_process(settings: Settings, port: int, log_dir: Any, *, access_log: bool = False, **gateway_env: object) -> Any:
    """``orderradar web`` as a child process, configured only through the environment."""
    import os
    import sys

    from orderradar.devstack.process import ManagedProcess

    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERRADAR_")}
    env.update(
        {
            "ORDERRADAR_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "ORDERRADAR_TOPIC_PREFIX": settings.topic_prefix,
            "ORDERRADAR_INFLUX_URL": settings.influx_url,
            "ORDERRADAR_INFLUX_DB": settings.influx_db,
            "ORDERRADAR_WEB_HOST": "127.0.0.1",
            "ORDERRADAR_WEB_PORT": str(port),
            "ORDERRADAR_INGEST_KEYS": ",".join(f"{s}={k.get_secret_value()}" for s, k in settings.ingest_keys.items()),
            "ORDERRADAR_WS_MAX_CONNECTIONS_PER_CLIENT": str(settings.ws_max_connections_per_client),
            "ORDERRADAR_CONFIG_DIR": str(log_dir),
            "ORDERRADAR_DATA_DIR": str(log_dir),  # the loopback stack's session-secret file
        }
    )
    env.update({f"ORDERRADAR_GATEWAY_{k.upper()}": str(v) for k, v in gateway_env.items()})
    argv = [sys.executable, "-m", "orderradar.cli", "--log-level", "INFO" if access_log else "WARNING", "web"]
    if not access_log:
        argv.append("--no-access-log")
    return ManagedProcess("web", argv, log_dir / f"web-{port}.log", env=env)


async def stuck_client(port: int, token: str) -> Any:
    """A /ws/track client that subscribes and then never reads, with tiny buffers on its side."""
    import asyncio
    import socket

    import websockets

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/track", sock=sock, max_queue=1, open_timeout=30)
    await ws.send(orjson.dumps({"type": "subscribe", "token": token}).decode())
    return ws
