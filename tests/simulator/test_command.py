"""``orderradar simulate`` argument handling, run end to end into a JSON Lines file."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from config.settings import Settings
from orderradar.simulator.command import (
    UsageError,
    add_arguments,
    parse_duration,
    parse_speed,
    parse_start,
    run_from_args,
)
from orderradar.simulator.generator import TrafficGenerator, TrafficProfile
from orderradar.simulator.scenarios import parse_scenario

START = "2026-11-11T08:00:00+08:00"


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="orderradar simulate")
    add_arguments(parser)
    return asyncio.run(run_from_args(parser.parse_args(list(argv)), Settings()))


def test_durations_speeds_and_start_times_parse():
    assert parse_duration("90", "--x") == timedelta(seconds=90)
    assert parse_duration("15m", "--x") == timedelta(minutes=15)
    assert parse_duration("1.5d", "--x") == timedelta(hours=36)
    with pytest.raises(UsageError, match="--sim-duration: .soon. must be a duration"):
        parse_duration("soon", "--sim-duration")
    assert parse_speed("max") is None and parse_speed("60") == 60
    with pytest.raises(UsageError, match="--speed"):
        parse_speed("0")
    now = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)
    default = parse_start(None, now)
    assert default == now.replace(microsecond=0) and default.utcoffset() == timedelta(hours=8)
    with pytest.raises(UsageError, match="UTC offset"):
        parse_start("2026-11-11T08:00:00", now)


def test_simulate_to_a_file_with_scenarios_and_disruptions(tmp_path):
    out, disruptions = tmp_path / "events.jsonl", tmp_path / "disruptions.json"
    rc = _run(
        "--out",
        str(out),
        "--speed",
        "max",
        "--sim-duration",
        "2h",
        "--start",
        START,
        "--orders-per-day",
        "5000",
        "--seed",
        "4",
        "--scenario",
        "typhoon",
        "--scenario",
        "source_lag:source=wms",
        "--disruptions-out",
        str(disruptions),
    )
    assert rc == 0
    start = datetime.fromisoformat(START)
    scenarios = [parse_scenario("typhoon"), parse_scenario("source_lag:source=wms")]
    expected = TrafficGenerator(4, start, TrafficProfile(orders_per_day=5000), scenarios).take_until(
        start + timedelta(hours=2)
    )
    assert out.read_bytes().splitlines() == [e.value for e in expected]
    features = json.loads(disruptions.read_text())["features"]
    assert [f["properties"]["kind"] for f in features] == ["typhoon"]


def test_rate_sets_orders_per_day_and_max_orders_ends_the_run(tmp_path):
    out = tmp_path / "events.jsonl"
    assert _run("--out", str(out), "--speed", "max", "--max-orders", "20", "--start", START) == 0
    order_ids = {json.loads(line)["order_id"] for line in out.read_bytes().splitlines()}
    assert len(order_ids) == 20
    assert _run("--out", str(out), "--rate", "50", "--speed", "3600", "--duration", "0.3s", "--start", START) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--scenario", "meteor"), "unknown scenario 'meteor'"),
        (("--scenario", "hub_outage:hub=ZZ-99"), "hub: unknown hub"),
        (("--rate", "100", "--speed", "max"), "--rate needs a finite --speed"),
        (("--speed", "fast"), "--speed: expected a number"),
        (("--start", "tomorrow"), "--start: expected ISO 8601"),
    ],
)
def test_bad_arguments_exit_2_with_the_problem_named(argv, message, capsys, tmp_path):
    assert _run("--out", str(tmp_path / "x.jsonl"), *argv) == 2
    assert message in capsys.readouterr().err


def test_list_scenarios_prints_every_scenario(capsys):
    assert _run("--list-scenarios") == 0
    printed = capsys.readouterr().out
    for name in (
        "flash_sale",
        "hub_outage",
        "carrier_slowdown",
        "typhoon",
        "broken_scanner",
        "channel_dupes",
        "source_lag",
    ):
        assert name in printed


def test_control_from_stdin_starts_a_scenario(tmp_path):
    import subprocess
    import sys

    script = (
        "import argparse, asyncio, sys\n"
        "from config.settings import Settings\n"
        "from orderradar.simulator.command import add_arguments, run_from_args\n"
        "p = argparse.ArgumentParser(); add_arguments(p)\n"
        "sys.exit(asyncio.run(run_from_args(p.parse_args(sys.argv[1:]), Settings())))\n"
    )
    disruptions = tmp_path / "disruptions.json"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "--out",
            str(tmp_path / "e.jsonl"),
            "--speed",
            "3600",
            "--duration",
            "1s",
            "--start",
            START,
            "--control",
            "-",
            "--disruptions-out",
            str(disruptions),
        ],
        input="+typhoon:zone=hainan\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    features = json.loads(disruptions.read_text())["features"]
    assert [f["properties"]["scenario"] for f in features] == ["typhoon:zone=hainan"]
