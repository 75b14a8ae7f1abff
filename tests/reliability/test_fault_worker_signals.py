"""Fault injection against real worker subprocesses: graceful SIGTERM, a SIGSTOPped
(zombie) worker beside a live one, and a rebalance storm.

Each test asserts the common pass condition of :func:`stream_scenario.assert_all` (one
InfluxDB point per valid event, every invalid record dead-lettered, state == replay) plus
its own fault-specific condition.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from stream_eventgen import generate
from stream_harness import committed, count_points, start_worker
from stream_scenario import Run, assert_all, running_worker, second_worker

from config.settings import Settings
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from stream.kafka.batch_source import source_group
from stream.topics import ORDER_EVENTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHUTDOWN_LIMIT_S = 30.0
#: what stream_harness.worker_argv passes as --session-timeout
SESSION_TIMEOUT_S = 6.0


def _exited(process: ManagedProcess) -> bool:
    return not process.alive()


def test_sigterm_at_40_percent_exits_within_30s_and_converges(stack_settings: Settings, tmp_path: Path) -> None:
    with running_worker(stack_settings, generate(seed=41, total=12_000), tmp_path) as run:
        run.wait_points(0.4, timeout=180)
        assert run.worker is not None
        before = count_points(stack_settings)
        sent = time.monotonic()
        run.worker.signal(signal.SIGTERM)
        worker = run.worker
        wait_until(lambda: _exited(worker), SHUTDOWN_LIMIT_S, interval=0.1, what="worker exit after SIGTERM")
        shutdown_s = time.monotonic() - sent
        print(f"SIGTERM shutdown took {shutdown_s:.1f}s with {before} points written")
        # A restart after a graceful stop counts as a restart for the oracle: a batch
        # whose offsets were not yet committed is reprocessed (idempotently).
        run.restarts += 1
        run.start()
        run.wait_done(timeout=240)
    assert shutdown_s < SHUTDOWN_LIMIT_S
    assert_all(run)


def test_sigstopped_zombie_is_replaced_and_its_late_work_adds_nothing(stack_settings: Settings, tmp_path: Path) -> None:
    """Was xfail (3 of 8 runs failed with the Faust source and cursors). With the batch
    source, the lease checked again at the socket and dropped partitions held back until
    their state is read again: 11 of 11 runs passed (2026-12-07), 2 of them with a late
    write stopped at the socket."""
    zombie_s = 0.0
    with (
        running_worker(stack_settings, generate(seed=43, total=16_000), tmp_path) as run,
        second_worker(run, stack_settings) as second,
    ):
        run.wait_points(0.3, timeout=180)
        assert run.worker is not None
        run.worker.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        at_stop = count_points(stack_settings)

        run.wait_taken_over(second, stopped_at, SESSION_TIMEOUT_S)
        after_takeover = count_points(stack_settings)
        assert after_takeover > at_stop, "no progress while the first worker was stopped"
        zombie_s = time.monotonic() - stopped_at
        run.worker.signal(signal.SIGCONT)
        resumed_at = time.monotonic()

        # The resumed zombie finds its generation fenced, rejoins; the group settles with
        # everything committed and both workers alive.
        def settled() -> bool:
            run.check_alive()
            return time.monotonic() - resumed_at > 2 * SESSION_TIMEOUT_S and run.all_committed()

        wait_until(settled, timeout=180, interval=0.5, what="group settled after SIGCONT")
        print(f"zombie stopped {zombie_s:.1f}s; points {at_stop} at SIGSTOP, {after_takeover} after takeover")
        run.restarts += 1  # a takeover reprocesses uncommitted batches, like a restart
    assert zombie_s > SESSION_TIMEOUT_S
    assert_all(run)


def test_rebalance_storm_third_worker_added_and_removed_3_times(stack_settings: Settings, tmp_path: Path) -> None:
    records = generate(seed=47, total=10_000)
    quarter = len(records) // 4
    chunks = [records[i * quarter : (i + 1) * quarter if i < 3 else len(records)] for i in range(4)]
    run = Run(stack_settings, records, tmp_path)
    run.produce_more(chunks[0])
    run.start()
    second = start_worker(stack_settings, tmp_path / "worker-second.log")
    thirds: list[ManagedProcess] = []
    try:
        for round_ in (1, 2, 3):
            third = start_worker(stack_settings, tmp_path / f"worker-third-{round_}.log")
            thirds.append(third)
            joined_at = time.monotonic()
            run.produce_more(chunks[round_])
            before = count_points(stack_settings)

            def progressed_with_third(
                third: ManagedProcess = third, joined_at: float = joined_at, before: int = before
            ) -> bool:
                run.check_alive()
                if not third.alive():
                    raise AssertionError(f"third worker died:\n{third.log_tail(40)}")
                # Past a session timeout the join has been through a rebalance.
                return time.monotonic() - joined_at > SESSION_TIMEOUT_S and count_points(stack_settings) > before

            wait_until(progressed_with_third, timeout=120, interval=0.5, what=f"progress with third worker #{round_}")
            third.signal(signal.SIGTERM)
            wait_until(
                lambda third=third: not third.alive(),
                SHUTDOWN_LIMIT_S,
                interval=0.1,
                what=f"third worker #{round_} exit after SIGTERM",
            )
        wait_until(lambda: (run.check_alive(), run.all_committed())[1], timeout=240, interval=0.5, what="lag drained")
        final = asyncio.run(committed(stack_settings, source_group(stack_settings), stack_settings.topic(ORDER_EVENTS)))
        run.restarts += 1  # rebalances reprocess uncommitted batches
    finally:
        for third in thirds:
            third.stop()
        second.stop()
        run.stop()
    # Lag 0: the committed offset of every partition is its end offset (records produced).
    assert {p: final.get(p, 0) for p in run.produced} == run.produced
    assert_all(run)
