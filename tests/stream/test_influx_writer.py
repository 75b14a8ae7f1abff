"""The InfluxDB writer against real HTTP servers: the real influxd, and a scripted one for
429/5xx/slow answers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from stream_harness import count_points

from alerting.backoff import parse_retry_after
from config.settings import Settings
from stream.core.dlq import InfluxFailure
from stream.sinks.influx import INFLUX_RETRY, InfluxWriter

pytestmark = pytest.mark.integration


class Scripted:
    """A real HTTP server answering ``/write`` with a script of (status, headers, delay)."""

    def __init__(self, script: list[tuple[int, dict[str, str], float]]) -> None:
        self.script = script
        self.requests: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append(body)
                status, headers, delay = outer.script[min(len(outer.requests), len(outer.script)) - 1]
                if delay:
                    time.sleep(delay)  # the server being slow, not the test waiting
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Scripted:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def writer(url: str, clock: Clock, **policy: float) -> InfluxWriter:
    return InfluxWriter(
        url,
        "db",
        timeout_s=0.5,
        policy=replace(INFLUX_RETRY, **policy),  # type: ignore[arg-type]
        sleep=clock.sleep,
        clock=clock,
    )


LINES = ["m,t=a v=1i 1", "m,t=a v=2i 2"]


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def test_retries_5xx_and_429_honouring_retry_after() -> None:
    clock = Clock()
    script = [(503, {"Retry-After": "1"}, 0.0), (429, {"Retry-After": "0"}, 0.0), (204, {}, 0.0)]

    async def scenario() -> None:
        w = writer(server.url, clock, attempts=4)
        report = await w.write(LINES)
        await w.aclose()
        assert report.ok and report.written == 2

    with Scripted(script) as server:
        run(scenario)
    assert clock.slept == [1.0, 0.0]
    assert len(server.requests) == 3 and server.requests[0] == b"\n".join(s.encode() for s in LINES)


def test_exhausted_retries_dead_letter_and_open_the_circuit() -> None:
    clock = Clock()

    async def scenario() -> None:
        w = writer(server.url, clock, attempts=3, base_delay=0.2, max_delay=1.0, later_base_delay=5.0)
        report = await w.write(LINES)
        assert not report.ok and report.failed[0].reason is InfluxFailure.RETRIES_EXHAUSTED
        assert report.failed[0].attempts == 3 and list(report.failed[0].lines) == LINES
        assert len(server.requests) == 3 and len(clock.slept) == 2
        assert all(0 <= d <= 0.2 * 2**i for i, d in enumerate(clock.slept))  # full jitter, exponential cap
        again = await w.write(LINES)  # circuit open: fails at once, no request
        assert again.failed[0].reason is InfluxFailure.CIRCUIT_OPEN and len(server.requests) == 3
        clock.now += 5.0  # cool-down over: it tries again
        await w.write(LINES)
        assert len(server.requests) == 6
        await w.aclose()

    with Scripted([(500, {}, 0.0)]) as server:
        run(scenario)


def test_retry_after_beyond_the_cap_gives_up_at_once() -> None:
    clock = Clock()

    async def scenario() -> None:
        w = writer(server.url, clock, attempts=5, max_delay=5.0)
        report = await w.write(LINES)
        await w.aclose()
        assert report.failed[0].reason is InfluxFailure.RETRIES_EXHAUSTED and len(server.requests) == 1
        assert w.circuit_open and clock.slept == []

    with Scripted([(503, {"Retry-After": "120"}, 0.0)]) as server:
        run(scenario)


def test_timeouts_and_refused_connections_are_retried() -> None:
    async def slow_then_fast() -> None:
        w = writer(server.url, Clock(), attempts=3)
        report = await w.write(LINES)
        await w.aclose()
        assert report.ok and len(server.requests) == 2 and w.stats.retries == 1

    with Scripted([(204, {}, 2.0), (204, {}, 0.0)]) as server:
        run(slow_then_fast)

    async def refused() -> None:  # the server is gone now
        w = writer(server.url, Clock(), attempts=2)
        report = await w.write(LINES)
        await w.aclose()
        assert report.failed[0].reason is InfluxFailure.RETRIES_EXHAUSTED
        assert "ConnectError" in report.failed[0].error

    run(refused)


def test_4xx_from_influxdb_is_a_bug_rejected_without_retry(stack_settings: Settings) -> None:
    async def scenario() -> None:
        w = InfluxWriter(stack_settings.influx_url, stack_settings.influx_db, policy=INFLUX_RETRY)
        report = await w.write(["m,t=a v=1i 1", "this is not line protocol"])
        await w.aclose()
        assert report.failed[0].reason is InfluxFailure.REJECTED and report.failed[0].attempts == 1
        assert "HTTP 400" in report.failed[0].error

    run(scenario)


def test_batches_of_at_most_5000_lines_and_idempotent_rewrites(stack_settings: Settings) -> None:
    lines = [f'sku_events,status=paid event_id="e{i}" {1_700_000_000_000_000_000 + i}' for i in range(12_000)]

    async def scenario() -> None:
        w = InfluxWriter(stack_settings.influx_url, stack_settings.influx_db)
        assert (await w.write(lines)).written == 12_000
        assert w.stats.requests == 3
        await w.write(lines[:100])  # the same points again: no new point
        await w.aclose()

    run(scenario)
    assert count_points(stack_settings) == 12_000


def test_parse_retry_after() -> None:
    now = datetime(2026, 11, 11, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None
