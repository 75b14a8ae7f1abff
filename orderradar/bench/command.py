"""``orderradar bench``: every benchmark in one run, each against its own same-run baseline.

The scripts under ``bench/`` each start what they need (broker, influxd, web server) on
free loopback ports, measure a baseline and the real thing in the same run, and write a
JSON result. This command runs the chosen ones in sequence, then writes one combined report
with the machine's description and prints a readable table. ``--smoke`` runs every script
at a tiny size: it proves the harness works (the test suite does this), not how fast
anything is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from config.settings import Settings

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO / "bench"


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: str
    full: tuple[str, ...]
    smoke: tuple[str, ...]
    summary: Callable[[dict[str, Any]], list[tuple[str, str]]]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}/s"


def _pipeline(r: dict[str, Any]) -> list[tuple[str, str]]:
    rounds = r.get("rounds") or [{}]
    one = rounds[-1].get("pipeline") or {}
    two = r.get("pipeline_two_workers") or {}
    ceiling = r.get("ceiling_noop_each") or {}
    return [
        ("ceiling: no-op Faust agent", _rate(ceiling.get("median_rate"))),
        ("full pipeline, one worker", _rate(one.get("rate"))),
        ("pipeline / ceiling (wall)", _pct(r.get("ratio_pipeline_to_ceiling_wall"))),
        ("pipeline / ceiling (per CPU second)", _pct(r.get("ratio_pipeline_to_ceiling_cpu"))),
        ("two workers, 8 partitions", _rate(two.get("rate"))),
        ("with geo, delays and alerting stages", _rate((r.get("pipeline_with_stages") or {}).get("rate"))),
        ("with stages / ceiling (wall)", _pct(r.get("ratio_with_stages_to_ceiling_wall"))),
        ("InfluxDB points written", _rate(one.get("points", 0) / one["seconds"] if one.get("seconds") else None)),
    ]


def _tracking(r: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for run in r.get("scenarios", []):
        lat = run.get("latency_ms", {})
        rows.append((f"WebSocket delivery, {run.get('viewers')} viewers",
                     f"p50 {lat.get('p50', 0):.0f} ms  p95 {lat.get('p95', 0):.0f} ms  p99 {lat.get('p99', 0):.0f} ms"))
    return rows


def _geo(r: dict[str, Any]) -> list[tuple[str, str]]:
    lookup, zone = r.get("geofence_lookup", {}), r.get("disruption_affected", {})
    return [
        (f"geofence lookup, {lookup.get('fences')} fences", _rate(lookup.get("lookup_points_per_s"))),
        (f"disruption zone over {zone.get('skus')} SKUs", f"{zone.get('affected_s', 0) * 1000:.0f} ms"),
    ]


def _delays(r: dict[str, Any]) -> list[tuple[str, str]]:
    steady, timers = r.get("steady", {}), r.get("timers", {})
    return [
        (f"delays + clustering, {r.get('in_flight_skus', '?')} SKUs in flight", _rate(steady.get("events_per_s"))),
        ("SLA timers fired", _rate(timers.get("fired", 0) / timers["wall_s"] if timers.get("wall_s") else None)),
    ]


BENCHMARKS = (
    Benchmark("pipeline", "bench_pipeline.py", (), ("--events", "3000", "--rounds", "1", "--skip-two"), _pipeline),
    Benchmark("tracking", "bench_tracking_ws.py", (),
              ("--viewers", "20", "--baseline", "2", "--orders", "5", "--rounds", "3", "--interval", "0.2"), _tracking),
    Benchmark("geo", "bench_geo.py", (), ("--points", "5000", "--fences", "50", "--skus", "5000"), _geo),
    Benchmark("delays", "bench_delays.py", (), ("--quick",), _delays),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", action="append", choices=[b.name for b in BENCHMARKS],
                        help="run only these (repeatable); default all")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check the harness, not the speed")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results",
                        help="where the combined report goes (default bench/results)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds each benchmark may take")


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg": list(os.getloadavg()),
    }


def run_one(bench: Benchmark, smoke: bool, out: Path, timeout: float) -> dict[str, Any]:
    argv = [sys.executable, str(BENCH_DIR / bench.script), *(bench.smoke if smoke else bench.full),
            "--out", str(out)]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{bench.script} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["_wall_seconds"] = round(time.monotonic() - started, 1)
    return result


def table(report: dict[str, Any]) -> str:
    lines = [f"{'measure':<42} value", f"{'-' * 42} {'-' * 40}"]
    for bench in BENCHMARKS:
        result = report["results"].get(bench.name)
        if result is None:
            continue
        for label, value in bench.summary(result):
            lines.append(f"{label:<42} {value}")
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    report: dict[str, Any] = {"when": stamp, "smoke": args.smoke, "machine": machine(), "results": {}}
    for bench in chosen:
        print(f"running {bench.name} ...", flush=True)
        out = args.results_dir / f"{bench.name}{'-smoke' if args.smoke else ''}.json"
        report["results"][bench.name] = run_one(bench, args.smoke, out, args.timeout)
    path = args.results_dir / f"bench-{stamp}{'-smoke' if args.smoke else ''}.json"
    path.write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"\nreport: {path}")
    return 0
