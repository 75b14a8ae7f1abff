"""The worker end to end, as a subprocess against the real broker and InfluxDB.

Input: generated records with 1% invalid, 5% duplicates (byte copies) and 5% reordered
within a minute. After the run (and after ``kill -9`` of the worker mid-stream plus a
restart) the invariants of :mod:`stream_scenario` hold: one point per valid event, every
invalid record dead-lettered with its reason, state equal to a pure replay (which also
proves Faust's own recovery rebuilt the table from the changelog the pipeline wrote).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from stream_eventgen import generate
from stream_scenario import assert_all, running_worker

from config.settings import Settings

pytestmark = pytest.mark.integration


def test_input_with_invalid_duplicate_and_reordered_records(stack_settings: Settings, tmp_path: Path) -> None:
    with running_worker(stack_settings, generate(seed=7, total=12_000), tmp_path) as run:
        run.wait_done(timeout=240)
    assert_all(run)


def test_kill_9_mid_stream_then_restart(stack_settings: Settings, tmp_path: Path) -> None:
    with running_worker(stack_settings, generate(seed=11, total=10_000), tmp_path) as run:
        run.wait_points(0.5, timeout=180)
        run.restart_hard()
        run.wait_done(timeout=240)
    assert run.restarts == 1
    assert_all(run)


@pytest.mark.slow
def test_100k_events_with_kill_9_at_20_50_80_percent(stack_settings: Settings, tmp_path: Path) -> None:
    with running_worker(stack_settings, generate(seed=2026, total=100_000), tmp_path) as run:
        for fraction in (0.2, 0.5, 0.8):
            run.wait_points(fraction, timeout=300)
            run.restart_hard()
        run.wait_done(timeout=600)
    assert run.restarts == 3
    assert_all(run)
