"""InfluxDB answering 503/429 with Retry-After, then stalling past the writer timeout,
then healthy again: behind a small fault-injecting HTTP proxy written here.

The proxy (a raw ASGI app under uvicorn on 127.0.0.1) forwards every request to the real
influxd and injects a scripted fault into the first ``/write`` requests. It records every
``/write``: arrival and end times, body hash and size, the status it answered, and for a
stalled request whether the client gave up (closed the connection) before the stall ended.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from stream_eventgen import generate
from stream_scenario import assert_all, running_worker

from config.settings import Settings
from orderradar.devstack.process import free_port
from orderradar.devstack.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WRITER_TIMEOUT_S = 2.0
STALL_S = 3 * WRITER_TIMEOUT_S
#: The scripted faults, one per /write request in arrival order; healthy after them.
SCRIPT = ("503", "503", "429", "429", "stall", "stall", "503", "429")


@dataclass
class WriteRecord:
    mode: str
    arrived: float
    body_sha: str
    body_len: int
    ended: float = 0.0
    status: int = 0
    client_gave_up: bool = False


@dataclass
class FaultProxy:
    upstream: str
    script: tuple[str, ...]
    writes: list[WriteRecord] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/write":
            index = len(self.writes)
            mode = self.script[index] if index < len(self.script) else "healthy"
            record = WriteRecord(mode, time.monotonic(), hashlib.sha256(body).hexdigest(), len(body))
            self.writes.append(record)
            try:
                await self._write(record, body, scope, receive, send)
            finally:
                record.ended = time.monotonic()
            return
        status, headers, content = await self._forward(scope, body)
        await self._respond(send, status, headers, content)

    async def _write(self, record: WriteRecord, body: bytes, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if record.mode in ("503", "429"):
            record.status = int(record.mode)
            await self._respond(send, record.status, [(b"retry-after", b"1")], b'{"error":"injected"}')
            return
        if record.mode == "stall":
            # Hold the request until the client closes it (its timeout) or the stall ends.
            try:
                message = await asyncio.wait_for(receive(), timeout=STALL_S)
                record.client_gave_up = message["type"] == "http.disconnect"
            except TimeoutError:
                record.client_gave_up = False
            if record.client_gave_up:
                return
        status, headers, content = await self._forward(scope, body)
        record.status = status
        await self._respond(send, status, headers, content)

    async def _forward(self, scope: dict[str, Any], body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        url = f"{self.upstream}{scope['path']}"
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode()
        headers = {
            k.decode(): v.decode()
            for k, v in scope["headers"]
            if k.lower() not in (b"host", b"content-length", b"connection")
        }
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.request(scope["method"], url, content=body, headers=headers)
        keep = [
            (k.encode(), v.encode())
            for k, v in response.headers.items()
            if k.lower() in ("content-type", "x-influxdb-version", "request-id")
        ]
        return response.status_code, keep, response.content

    @staticmethod
    async def _respond(send: Any, status: int, headers: list[tuple[bytes, bytes]], content: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(content)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": content})


class RunningProxy:
    def __init__(self, proxy: FaultProxy) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            proxy, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"influx-proxy-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RunningProxy:
        self.thread.start()
        wait_until(lambda: self.server.started, 30, what="proxy start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def test_influx_503_429_stall_then_healthy_loses_nothing(stack_settings: Settings, tmp_path: Path) -> None:
    proxy = FaultProxy(stack_settings.influx_url, SCRIPT)
    with RunningProxy(proxy) as running:
        via_proxy = stack_settings.model_copy(update={"influx_url": running.url, "influx_timeout_s": WRITER_TIMEOUT_S})
        with running_worker(
            via_proxy, generate(seed=53, total=10_000), tmp_path, extra_args=("--influx-replay-max-backoff", "2")
        ) as run:
            run.wait_done(timeout=240)
            run.settings = stack_settings  # check InfluxDB directly, not through the proxy
            run.wait_points(1.0, timeout=120)
    writes = list(proxy.writes)
    assert len(writes) > len(SCRIPT), "the worker never got past the scripted faults"
    assert all(w.body_len > 0 for w in writes), "a /write request without a body"
    assert all(w.ended > 0 for w in writes), "a /write request never finished"
    # Every request has a client timeout: each stalled request was abandoned by the
    # writer about WRITER_TIMEOUT_S after it arrived, well before the stall would end.
    stalls = [w for w in writes if w.mode == "stall"]
    assert stalls and all(w.client_gave_up for w in stalls), stalls
    assert all(w.ended - w.arrived < STALL_S - 1 for w in stalls), [w.ended - w.arrived for w in stalls]
    # Retry-After honoured: the next attempt with the same body comes >= ~1 s after the
    # 503/429 that said "Retry-After: 1". After the writer's last attempt the chunk goes to
    # influx-dlq and the replayer (another writer, one attempt per send) sends it, chunked
    # anew: its refused bodies are not retried as such, and the proxy cannot tell the two
    # writers apart. So only retried bodies are timed; that nothing was lost is checked below.
    gaps = []
    for n, w in enumerate(writes):
        if w.status in (429, 503):
            retry = next((r for r in writes[n + 1 :] if r.body_sha == w.body_sha), None)
            if retry is not None:
                gaps.append(retry.arrived - w.ended)
    assert gaps and min(gaps) >= 0.9, gaps
    print(
        f"{len(writes)} writes; retry gaps after Retry-After: 1 = {[round(g, 2) for g in gaps]}; "
        f"stalls abandoned after {[round(w.ended - w.arrived, 2) for w in stalls]} s"
    )
    assert_all(run)
