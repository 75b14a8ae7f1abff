"""``orderradar simulate``: arguments and the entry point the CLI calls.

Examples::

    orderradar simulate                                  # 200k orders/day, real time, to Kafka
    orderradar simulate --speed 60 --scenario flash_sale:minutes=10
    orderradar simulate --rate 500 --control -           # 500 events/s; type +typhoon / -typhoon
    orderradar simulate --speed max --sim-duration 1d --out day.jsonl --start 2026-11-11T00:00:00+08:00
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import logging
import os
import re
import sys
import time
from collections.abc import AsyncIterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from config import durations
from config.client_auth import kafka_auth
from stream.contract import MAX_FUTURE_SKEW

from .control_feed import follow_file, follow_stdin
from .durations import CHINA_TZ
from .generator import TrafficGenerator, TrafficProfile
from .pacing import seconds_until_future_rejection
from .rates import events_per_second_for, orders_per_day_for
from .runner import run_simulation
from .scenarios import Scenario, ScenarioError, describe_scenarios, parse_scenario
from .sinks import JsonLinesSink, KafkaSink, Sink

logger = logging.getLogger(__name__)

DEFAULT_ORDERS_PER_DAY = 50_000.0
#: ``--warmup auto``: long enough for steady state (90 % of an order's events happen within
#: 36 h of payment, so the rate is reached at once) ...
AUTO_WARMUP = timedelta(hours=36)
#: ... unless that places more orders than this (about a minute of CPU on a laptop); then
#: only the early stages are filled (a part-day warm-up buys little: the day's cycle).
AUTO_WARMUP_MAX_ORDERS = 300_000
SHORT_WARMUP = timedelta(hours=1)


class UsageError(ValueError):
    """A command-line value is unusable; the message names the option."""


def parse_duration(text: str, option: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``2h``, ``1.5d`` -> timedelta (:mod:`config.durations`)."""
    try:
        return durations.parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def parse_speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise UsageError(f"--speed: expected a number or 'max', got {text!r}") from None
    if not speed > 0:
        raise UsageError(f"--speed: must be positive, got {text}")
    return speed


_TIME_OF_DAY = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def latest_time_of_day(hour: int, minute: int, wall_now: datetime) -> datetime:
    """The latest moment at or before ``wall_now`` whose China time is ``hour:minute``."""
    now = wall_now.astimezone(CHINA_TZ).replace(microsecond=0)
    at = now.replace(hour=hour, minute=minute, second=0)
    return at if at <= now else at - timedelta(days=1)


def parse_start(text: str | None, wall_now: datetime) -> datetime:
    """``None``: now; ``HH:MM``: the latest such China time (at most a day ago), so a run
    can start at any time of day whatever the wall clock says; else ISO 8601 with offset."""
    if text is None:
        return wall_now.astimezone(CHINA_TZ).replace(microsecond=0)
    if match := _TIME_OF_DAY.match(text):
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour > 23 or minute > 59:
            raise UsageError(f"--start: {text!r} is not a time of day (00:00 to 23:59)")
        return latest_time_of_day(hour, minute, wall_now)
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--start: expected ISO 8601 like 2026-11-11T00:00:00+08:00, got {text!r}") from None
    if start.tzinfo is None:
        raise UsageError("--start: needs a UTC offset, e.g. 2026-11-11T00:00:00+08:00")
    return start


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` options to ``parser``."""
    rate = parser.add_argument_group("rate")
    volume = rate.add_mutually_exclusive_group()
    volume.add_argument(
        "--orders-per-day",
        type=float,
        default=None,
        help=f"mean simulated orders per day (default {DEFAULT_ORDERS_PER_DAY:.0f})",
    )
    volume.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="EVENTS_PER_S",
        help="target events per wall-clock second in steady state; sets orders/day for --speed, implies --flat",
    )
    rate.add_argument("--speed", default="1", help="simulated seconds per wall second, or 'max' (default 1)")
    rate.add_argument("--flat", action="store_true", help="constant order rate instead of the daily curve")

    run = parser.add_argument_group("run")
    run.add_argument("--seed", type=int, default=1, help="random seed; same seed, same events (default 1)")
    run.add_argument(
        "--start",
        default=None,
        help="simulated start: HH:MM (China time, the latest such moment, at most a day ago) "
        "or ISO 8601 with offset (default now)",
    )
    run.add_argument("--duration", default=None, help="stop after this much wall time (90s, 15m, 2h)")
    run.add_argument("--sim-duration", default=None, help="stop after this much simulated time")
    run.add_argument("--max-orders", type=int, default=None, help="place this many orders, then drain and stop")
    run.add_argument(
        "--warmup",
        default="0",
        help="simulated time before --start whose orders are already in flight at start "
        "(costs about 0.2 ms CPU per order); 'auto': 36h, or 1h if 36h is more than "
        f"{AUTO_WARMUP_MAX_ORDERS:,} orders (default 0)",
    )
    run.add_argument(
        "--backfill",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of the orders in flight after the warm-up whose earlier scans are sent "
        "at start, so a receiver starts with parcels in every stage (default 0)",
    )
    run.add_argument("--gps-minutes", type=float, default=120.0, help="minutes between truck GPS fixes (default 120)")

    scen = parser.add_argument_group("scenarios")
    scen.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME[:K=V,...]",
        help="start a scenario at start time (repeatable); see --list-scenarios",
    )
    scen.add_argument(
        "--control",
        default=None,
        metavar="PATH|-",
        help="read +scenario / -scenario / ? lines from a file (followed) or stdin",
    )
    scen.add_argument(
        "--disruptions-out",
        default=None,
        metavar="PATH",
        help="keep the active disruption polygons (GeoJSON) in this file",
    )
    scen.add_argument("--list-scenarios", action="store_true", help="print scenarios and parameters, then exit")

    out = parser.add_argument_group("output")
    out.add_argument(
        "--out", default=None, metavar="PATH|-", help="write JSON Lines here instead of producing to Kafka"
    )
    out.add_argument("--linger-ms", type=int, default=20, help="Kafka producer linger (default 20)")
    out.add_argument("--stats-every", type=float, default=10.0, help="seconds between progress log lines")


def auto_warmup(orders_per_day: float) -> timedelta:
    """36 h of warm-up if that is at most :data:`AUTO_WARMUP_MAX_ORDERS` orders, else 1 h."""
    if orders_per_day * AUTO_WARMUP.total_seconds() / 86_400 <= AUTO_WARMUP_MAX_ORDERS:
        return AUTO_WARMUP
    logger.warning(
        "%.0f orders a day: warming up %s only (36 h would place more than %d orders); the rate "
        "is reached over the next day",
        orders_per_day,
        SHORT_WARMUP,
        AUTO_WARMUP_MAX_ORDERS,
    )
    return SHORT_WARMUP


def _write_disruptions(path: Path, collection: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(collection, ensure_ascii=False, indent=1))
    os.replace(tmp, path)  # readers never see half a file


async def run_from_args(args: argparse.Namespace, settings: Any) -> int:
    """Run ``orderradar simulate``; ``settings`` is a ``config.settings.Settings``."""
    if args.list_scenarios:
        print(describe_scenarios())
        return 0
    try:
        speed = parse_speed(args.speed)
        start = parse_start(args.start, datetime.now(UTC))
        scenarios: list[Scenario] = [parse_scenario(s) for s in args.scenario]
        warmup = None if args.warmup == "auto" else parse_duration(args.warmup, "--warmup")
        sim_until = start + parse_duration(args.sim_duration, "--sim-duration") if args.sim_duration else None
        wall_s = parse_duration(args.duration, "--duration").total_seconds() if args.duration else None
        gps_s = args.gps_minutes * 60.0
        if args.rate is not None:
            if speed is None:
                raise UsageError("--rate needs a finite --speed (events per wall second mean nothing at 'max')")
            orders_per_day = orders_per_day_for(args.rate, speed, gps_s)
        else:
            orders_per_day = args.orders_per_day or DEFAULT_ORDERS_PER_DAY
        if warmup is None:
            warmup = auto_warmup(orders_per_day)
        profile = TrafficProfile(
            orders_per_day=orders_per_day,
            diurnal=not args.flat and args.rate is None,
            gps_interval_s=gps_s,
            warmup_s=warmup.total_seconds(),
            max_orders=args.max_orders,
            backfill_share=args.backfill,
        )
    except (UsageError, ScenarioError, ValueError) as exc:
        print(f"orderradar simulate: {exc}", file=sys.stderr)
        return 2

    generator = TrafficGenerator(args.seed, start, profile, scenarios)
    if warmup:
        logger.info("warming up: simulating %s before start", warmup)
        began = time.monotonic()
        generator.skip_until(start)
        gc.freeze()  # the in-flight shipments live on: later collections need not scan them
        logger.info(
            "warm-up done in %.0f s: %d orders placed, %d shipments in flight",
            time.monotonic() - began,
            generator.orders_placed,
            generator.in_flight,
        )
    behind = datetime.now(UTC) - start
    horizon = seconds_until_future_rejection(speed or 0.0, MAX_FUTURE_SKEW, behind)
    if horizon is not None:
        logger.warning(
            "at speed %g event times pass the receiver's %s future limit after %.0f wall minutes",
            speed,
            MAX_FUTURE_SKEW,
            horizon / 60,
        )
    logger.info(
        "simulating seed=%d orders_per_day=%.0f expected_events_per_s=%.0f speed=%s start=%s scenarios=%s",
        args.seed,
        orders_per_day,
        events_per_second_for(orders_per_day, speed or 1.0, gps_s),
        args.speed,
        start.isoformat(),
        ",".join(s.spec() for s in scenarios) or "-",
    )

    sink: Sink
    if args.out is not None:
        sink = JsonLinesSink(args.out)
    else:
        kafka = KafkaSink(
            settings.kafka_bootstrap,
            settings.topic("order-events"),
            linger_ms=args.linger_ms,
            security=kafka_auth(settings),
        )
        await kafka.start()
        sink = kafka
    controls: AsyncIterable[str] | None = None
    if args.control == "-":
        controls = follow_stdin()
    elif args.control is not None:
        controls = follow_file(Path(args.control))
    on_disruptions = None
    if args.disruptions_out is not None:
        on_disruptions = functools.partial(_write_disruptions, Path(args.disruptions_out))

    report = await run_simulation(
        generator,
        sink,
        speed=speed,
        sim_until=sim_until,
        wall_duration_s=wall_s,
        controls=controls,
        on_disruptions=on_disruptions,
        stats_every_s=args.stats_every,
    )
    logger.info(
        "simulation done events=%d orders=%d sim=%s..%s wall_s=%.1f controls=%d",
        report.events,
        report.orders,
        report.sim_start.isoformat(),
        report.sim_end.isoformat(),
        report.wall_s,
        report.controls_applied,
    )
    return 0


def run(args: argparse.Namespace, settings: Any) -> int:
    """``orderradar simulate`` entry point (the CLI calls commands synchronously)."""
    return asyncio.run(run_from_args(args, settings))
