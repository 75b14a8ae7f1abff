"""Retention in event time (issue #20): settings, the index a sweep reads, and the pipeline
forgetting closed orders and abandoned open ones (tombstones, ``abandoned_skus`` points)."""

from __future__ import annotations

import argparse
from datetime import timedelta

import pytest
from pydantic import ValidationError
from stream_harness import count_points
from test_pipeline import changelog_state, sweep_in_two_batches

from config.settings import Settings
from orderradar.worker_command import add_arguments, options_from
from stream.core.order_state import OrderState
from stream.core.retention import HOUR_NS, RetentionIndex, RetentionSettings


def test_settings_parse_durations_and_refuse_nonsense() -> None:
    parsed = RetentionSettings.model_validate({"closed": "36h", "abandoned_after": "14d"})
    assert (parsed.closed, parsed.abandoned_after) == (timedelta(hours=36), timedelta(days=14))
    for bad in (
        {"closed": "0s"},
        {"closed": "2d", "abandoned_after": "1d"},
        {"closed": "soon"},
        {"closed": "1d", "extra": 1},
    ):
        with pytest.raises(ValidationError):
            RetentionSettings.model_validate(bad)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERRADAR_RETENTION_CLOSED", "12h")
    monkeypatch.setenv("ORDERRADAR_RETENTION_ABANDONED_AFTER", "20d")
    settings = Settings()
    assert (settings.retention.closed, settings.retention.abandoned_after) == (timedelta(hours=12), timedelta(days=20))


def test_index_offers_only_orders_past_a_horizon_and_each_open_one_again_only_when_abandoned() -> None:
    index = RetentionIndex()
    clock = (0, None)
    index.note("old", clock, 10 * HOUR_NS + 5)
    index.note("new", clock, 40 * HOUR_NS)
    index.note("moved", clock, 9 * HOUR_NS)
    index.note("moved", clock, 41 * HOUR_NS)  # a newer event moves it
    closed, abandoned = 24 * HOUR_NS, 100 * HOUR_NS
    assert list(index.candidates(clock, 40 * HOUR_NS, closed, abandoned)) == ["old"]
    index.mark_open("old")
    assert list(index.candidates(clock, 40 * HOUR_NS, closed, abandoned)) == []
    assert list(index.candidates(clock, 60 * HOUR_NS, closed, abandoned)) == []
    # past both horizons: the recent ones (by hour), then the open one
    assert list(index.candidates(clock, 111 * HOUR_NS, closed, abandoned)) == ["new", "moved", "old"]
    assert list(index.candidates((1, None), 999 * HOUR_NS, closed, abandoned)) == []
    index.discard("old")
    assert len(index) == 2 and list(index.candidates(clock, 999 * HOUR_NS, closed, abandoned)) == ["new", "moved"]


def test_closed_and_abandoned_orders_leave_the_table_with_tombstones_and_findings(stack_settings: Settings) -> None:
    # The generator's orders start 7 s apart: 2000 records span a few hours of event time.
    pipeline, last, before = sweep_in_two_batches(
        stack_settings, 29, 2000, 1200, closed_retention=timedelta(minutes=20), open_retention=timedelta(minutes=90)
    )
    forgotten = set(before) - set(pipeline.store)
    open_forgotten = {k for k in forgotten if not before[k].closed}
    assert forgotten - open_forgotten and open_forgotten, "both kinds are exercised"
    assert pipeline.stats.expired_orders == len(forgotten)
    assert pipeline.stats.abandoned_orders == len(open_forgotten)
    skus = sum(1 for k in open_forgotten for s in before[k].skus.values() if not s.closed)
    assert pipeline.stats.abandoned_skus == skus == count_points(stack_settings, "abandoned_skus", "count")
    for order_id in forgotten:
        order = before[order_id]
        quiet = pipeline._newest_ns[(order.partition, None)] - order.last_event_ns
        assert quiet > (20 if order.closed else 90) * 60 * 10**9
    # Nothing due is left behind: every stored order is recent or (if open) not yet abandoned.
    for key, order in pipeline.store.items():
        if isinstance(order, OrderState) and key not in last.orders:
            quiet = pipeline._newest_ns[(order.partition, None)] - order.last_event_ns
            assert quiet <= (20 if order.closed else 90) * 60 * 10**9, key
    # The changelog holds tombstones: its compacted state has none of the forgotten orders.
    assert not forgotten & set(changelog_state(stack_settings))
    assert len(pipeline.retention_index) == sum(isinstance(v, OrderState) for v in pipeline.store.values())


def test_the_worker_takes_retention_from_the_environment_and_its_flags_override_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    monkeypatch.setenv("ORDERRADAR_RETENTION_CLOSED", "12h")
    options = options_from(parser.parse_args([]), Settings())
    assert (options.closed_retention, options.open_retention) == (timedelta(hours=12), timedelta(days=30))
    options = options_from(parser.parse_args(["--open-retention-days", "3"]), Settings())
    assert (options.closed_retention, options.open_retention) == (timedelta(hours=12), timedelta(days=3))
    with pytest.raises(SystemExit, match="abandoned_after"):
        options_from(parser.parse_args(["--closed-retention-days", "5", "--open-retention-days", "2"]), Settings())
