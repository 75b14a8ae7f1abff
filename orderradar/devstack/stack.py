"""``orderradar up``: the whole local stack on loopback, stopped by one Ctrl-C.

Starts, in order: the embedded broker, a local influxd (data under ``data_dir``), every
topic and the database, then a Faust worker, the web server and the traffic simulator as
child processes. Each child runs in its own process group with a parent-death signal, so
neither Ctrl-C nor a crash of this process leaves an orphan behind. A child that exits is
started again after a growing delay (the worker is crash-only: its successor replays the
unfinished batch); one that keeps crashing stops the stack (:mod:`orderradar.devstack.restarts`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType

import httpx

from config.settings import Settings, to_env
from orderradar.devstack.broker import EmbeddedBroker
from orderradar.devstack.influx import LocalInflux, create_database
from orderradar.devstack.process import ManagedProcess, StartError
from orderradar.devstack.restarts import RestartTracker
from orderradar.devstack.session_secret import SecretFileError, with_local_secret
from stream.kafka.admin import ensure_topics

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-simulator", action="store_true", help="do not start the traffic simulator")
    parser.add_argument("--rate", type=float, default=50.0, help="simulator events per second (default 50)")
    parser.add_argument(
        "--sim-start",
        default=None,
        metavar="HH:MM|ISO",
        help="simulated start: a China time of day (the latest, at most a day ago) or an ISO time; default now",
    )
    parser.add_argument(
        "--external-broker",
        action="store_true",
        help="use the broker at ORDERRADAR_KAFKA_BOOTSTRAP instead of starting one",
    )
    parser.add_argument(
        "--external-influx",
        action="store_true",
        help="use InfluxDB at ORDERRADAR_INFLUX_URL instead of starting influxd",
    )
    parser.add_argument("--ready-timeout", type=float, default=60.0, help="seconds each service may take to start")


class LocalStack:
    def __init__(self, settings: Settings, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir = settings.data_dir.resolve()
        # Children sign sessions and links with the data directory's random secret, never
        # with the public built-in one.
        settings = with_local_secret(settings.with_overrides(data_dir=self.data_dir))
        self.broker: EmbeddedBroker | None = None
        self.influx: LocalInflux | None = None
        self.children: list[ManagedProcess] = []
        if not args.external_broker:
            self.broker = EmbeddedBroker(settings.broker_port, self.data_dir)
            settings = settings.with_overrides(kafka_bootstrap=self.broker.bootstrap)
        if not args.external_influx:
            self.influx = LocalInflux(settings.influx_port, self.data_dir)
            settings = settings.with_overrides(influx_url=self.influx.url)
        self.settings = settings
        self.control_file = self.data_dir / "simulator-control.txt"

    def _child(self, name: str, *argv: str) -> ManagedProcess:
        env = {**os.environ, **to_env(self.settings)}
        # Local runs sign staff in with the documented demo users unless a real file is set.
        if not (self.settings.config_dir / "staff.yaml").exists():
            env.setdefault("ORDERRADAR_GATEWAY_STAFF_FILE", str(self.settings.config_dir / "staff.example.yaml"))
        process = ManagedProcess(
            name, [sys.executable, "-m", "orderradar.cli", *argv], self.data_dir / "logs" / f"{name}.log", env=env
        )
        self.children.append(process)
        return process.start()

    def start(self) -> None:
        timeout = self.args.ready_timeout
        if self.broker:
            self.broker.start(timeout)
        if self.influx:
            self.influx.start(timeout)
        ensure_topics(self.settings)
        create_database(self.settings.influx_url, self.settings.influx_db)
        self._child("worker", "worker")
        web = self._child("web", "web")
        web_url = f"http://{self.settings.web_host}:{self.settings.web_port}"
        web.wait_ready(lambda: _answers(f"{web_url}/healthz"), timeout)
        if not self.args.no_simulator:
            # Up to 36 simulated hours of warm-up put parcels in flight as in steady state (90 %
            # of the rate at once; about a minute of CPU), and 0.5 % of the orders in flight send
            # their history at start, so the war-room shows every stage at once.
            # Scenarios are switched at run time by appending lines to the control file.
            self.control_file.touch()
            start = ("--start", self.args.sim_start) if self.args.sim_start else ()
            self._child(
                "simulator",
                "simulate",
                "--rate",
                str(self.args.rate),
                "--warmup",
                "auto",
                "--backfill",
                "0.005",
                *start,
                "--control",
                str(self.control_file),
            )

    def describe(self) -> str:
        web = f"http://{self.settings.web_host}:{self.settings.web_port}"
        lines = [
            "Order Radar is up:",
            f"  war-room        {web}/warroom/   (demo sign-in: manager / orderradar-demo)",
            f"  API             {web}/api/v1/   health {web}/healthz   metrics {self._metrics_url()}",
            f"  broker          {self.settings.kafka_bootstrap}",
            f"  InfluxDB        {self.settings.influx_url}  (database {self.settings.influx_db})",
            f"  logs            {self.data_dir / 'logs'}",
            f"  scenarios       echo '+hub_outage:hub=HZ-3' >> {self.control_file}",
            "Press Ctrl-C to stop everything.",
        ]
        if not self.args.no_simulator:
            lines.insert(
                -2,
                f"  simulator       {self.args.rate:g} events/s after its warm-up "
                "(up to 36 simulated hours: about a minute of CPU)",
            )
        return "\n".join(lines)

    def _metrics_url(self) -> str:
        port = self.settings.metrics_port
        host = self.settings.metrics_host if port is not None else self.settings.web_host
        return f"http://{host}:{port if port is not None else self.settings.web_port}/metrics"

    def dead_children(self) -> list[ManagedProcess]:
        return [c for c in self.children if not c.alive()]

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        if self.influx:
            self.influx.stop()
        if self.broker:
            self.broker.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def run(args: argparse.Namespace, settings: Settings) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack = LocalStack(settings, args)
    except SecretFileError as exc:
        print(f"orderradar up: {exc}", file=sys.stderr)
        return 1
    trackers: dict[str, RestartTracker] = {}
    restart_at: dict[str, float] = {}  # crashed children waiting for their restart
    try:
        stack.start()
        print(stack.describe(), flush=True)
        while not stop.wait(0.5):
            now = time.monotonic()
            for child in stack.dead_children():
                if child.name in restart_at:
                    if now >= restart_at[child.name]:
                        del restart_at[child.name]
                        child.start()
                        print(f"{child.name} restarted (pid {child.pid})", file=sys.stderr, flush=True)
                    continue
                code = child.proc.returncode if child.proc is not None else None
                print(
                    f"{child.name} exited with {code}; last lines of {child.log_path}:\n{child.log_tail()}",
                    file=sys.stderr,
                    flush=True,
                )
                delay = trackers.setdefault(child.name, RestartTracker()).on_exit(now)
                if delay is None:
                    print(f"{child.name} keeps crashing; stopping the stack", file=sys.stderr)
                    return 1
                print(f"restarting {child.name} in {delay:.0f}s", file=sys.stderr, flush=True)
                restart_at[child.name] = now + delay
        return 0
    except StartError as exc:
        print(f"orderradar up: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping...", flush=True)
        stack.stop()
        print("stopped.", flush=True)
