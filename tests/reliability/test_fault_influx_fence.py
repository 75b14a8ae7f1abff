"""A worker frozen (SIGSTOP) while InfluxDB refuses its write, replaced, then resumed: its
retry of that write must not reach InfluxDB (the membership lease fences every attempt).

The first worker writes InfluxDB through a fault proxy (``test_fault_influx_proxy``); when
armed, the proxy stops the worker right after the worker sent a ``/write`` and answers it
503 with ``Retry-After: 1``. A second worker (writing InfluxDB directly) takes over every
partition; then the first is resumed and reads the 503. Without the fence it would send
the same body again a second later, over the successor's minute aggregates.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from stream_eventgen import generate
from stream_scenario import Run, assert_all, second_worker
from test_fault_influx_proxy import FaultProxy, RunningProxy, WriteRecord

from config.settings import Settings
from orderradar.devstack.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: what stream_harness.worker_argv passes as --session-timeout
SESSION_TIMEOUT_S = 6.0


@dataclass
class FreezingProxy(FaultProxy):
    """Forwards every write, except that once armed it freezes the writer of the next one."""

    freeze: Callable[[], None] | None = None
    frozen: WriteRecord | None = None

    async def _write(self, record: WriteRecord, body: bytes, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.freeze is not None and self.frozen is None:
            record.mode = "freeze"
            self.freeze()  # the worker stops right after sending this request
            self.frozen = record
            record.status = 503
            await self._respond(send, 503, [(b"retry-after", b"1")], b'{"error":"injected"}')
            return
        await super()._write(record, body, scope, receive, send)


def test_a_frozen_workers_influx_retry_is_fenced(stack_settings: Settings, tmp_path: Path) -> None:
    records = generate(seed=71, total=16_000)
    first, more = records[:8_000], records[8_000:]
    proxy = FreezingProxy(stack_settings.influx_url, ())
    with RunningProxy(proxy) as running:
        via_proxy = stack_settings.model_copy(update={"influx_url": running.url})
        run = Run(via_proxy, records, tmp_path)
        run.produce_more(first)
        run.start()
        try:
            with second_worker(run, stack_settings) as second:
                run.wait_points(0.2, timeout=180)
                zombie = run.worker
                assert zombie is not None
                proxy.freeze = lambda: zombie.signal(signal.SIGSTOP)
                run.produce_more(more)
                wait_until(lambda: proxy.frozen is not None, 180, interval=0.2, what="a write of the first worker")
                stopped_at = time.monotonic()

                run.wait_taken_over(second, stopped_at, SESSION_TIMEOUT_S)
                resumed_from = len(proxy.writes)
                zombie.signal(signal.SIGCONT)

                def fenced() -> bool:
                    return "membership lease expired" in zombie.log_path.read_text(errors="replace")

                def retried() -> bool:
                    frozen = proxy.frozen
                    return frozen is not None and any(
                        w.body_sha == frozen.body_sha for w in proxy.writes[resumed_from:]
                    )

                wait_until(
                    lambda: (run.check_alive(), fenced() or retried())[1],
                    timeout=60,
                    interval=0.2,
                    what="the resumed worker's write fenced or retried",
                )
                was_fenced = fenced()
                wait_until(
                    lambda: (run.check_alive(), run.all_committed())[1],
                    timeout=180,
                    interval=0.5,
                    what="group settled after SIGCONT",
                )
                run.restarts += 1  # a takeover reprocesses uncommitted batches, like a restart
        finally:
            run.stop()
    frozen = proxy.frozen
    assert frozen is not None
    late = [w for w in proxy.writes[resumed_from:] if w.body_sha == frozen.body_sha]
    print(f"frozen write of {frozen.body_len} bytes; {len(proxy.writes) - resumed_from} writes after SIGCONT")
    assert late == [], "the frozen worker retried its write after its lease lapsed"
    assert was_fenced
    run.settings = stack_settings
    assert_all(run)
