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
        rows.append(
            (
                f"WebSocket delivery, {run.get('viewers')} viewers",
                f"p50 {lat.get('p50', 0):.0f} ms  p95 {lat.get('p95', 0):.0f} ms  p99 {lat.get('p99', 0):.0f} ms",
            )
        )
    return rows


def _geo(r: dict[str, Any]) -> list[tuple[str, str]]:
    lookup, zone = r.get("geofence_lookup", {}), r.get("disruption_affected", {})
    return [
        (f"geofence lookup, {lookup.get('fences')} fences", _rate(lookup.get("lookup_points_per_s"))),
        (f"disruption zone over {zone.get('skus')} SKUs", f"{zone.get('affected_s', 0) * 1000:.0f} ms"),
    ]


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f} MiB"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} s"


def _latency(lat: dict[str, Any]) -> str:
    if not lat.get("n"):
        return "no deltas received"
    return f"p50 {lat['p50']:,.0f} ms  p95 {lat['p95']:,.0f} ms  p99 {lat['p99']:,.0f} ms  (n={lat['n']})"


def _system(r: dict[str, Any]) -> list[tuple[str, str]]:
    sustained = r.get("sustained", {})
    return [
        ("orderradar worker (all stages), drain", _rate(sustained.get("events_per_s"))),
        ("in-flight SKUs loaded", f"{r.get('state', {}).get('in_flight_skus', 0):,}"),
    ]


def _delays(r: dict[str, Any]) -> list[tuple[str, str]]:
    steady, timers = r.get("steady", {}), r.get("timers", {})
    return [
        (f"delays + clustering, {r.get('in_flight_skus', '?')} SKUs in flight", _rate(steady.get("events_per_s"))),
        ("SLA timers fired", _rate(timers.get("fired", 0) / timers["wall_s"] if timers.get("wall_s") else None)),
    ]


def _state(r: dict[str, Any]) -> list[tuple[str, str]]:
    f, flat = r.get("in_flight", {}), r.get("soak_flat") or {}
    return [
        (f"state: RSS per in-flight SKU ({f.get('skus', 0):,})", f"{f.get('bytes_per_sku_rss', 0):,.0f} B"),
        ("state: changelog bytes per in-flight SKU", f"{f.get('bytes_per_sku_encoded', 0):,.0f} B"),
        (
            "state: soak RSS max/min, retention on",
            "-" if not flat else f"{flat['rss_max_over_min']:.2f} (from day {flat['from_day']:g})",
        ),
    ]


BENCHMARKS = (
    Benchmark("pipeline", "bench_pipeline.py", (), ("--events", "3000", "--rounds", "1", "--skip-two"), _pipeline),
    Benchmark(
        "tracking",
        "bench_tracking_ws.py",
        (),
        ("--viewers", "20", "--baseline", "2", "--orders", "5", "--rounds", "3", "--interval", "0.2"),
        _tracking,
    ),
    Benchmark("geo", "bench_geo.py", (), ("--points", "5000", "--fences", "50", "--skus", "5000"), _geo),
    Benchmark("delays", "bench_delays.py", (), ("--quick",), _delays),
    Benchmark("system", "bench_system.py", (), ("--smoke",), _system),
    Benchmark("state", "bench_state.py", (), ("--smoke",), _state),
)


# -- issue #10: the seven items, numbered, from the scripts' results -------------------------


def items(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The seven measures of issue #10, keyed by item number; an item whose script did not
    run is absent. Values are copied from the per-script results (nothing is computed here
    but a rate from a count and its seconds, all measured in the same run)."""
    out: dict[str, dict[str, Any]] = {}
    pipeline, system = results.get("pipeline"), results.get("system")
    if pipeline:
        ceiling = pipeline["ceiling_noop_each"]["median_rate"]
        last = pipeline["rounds"][-1]["pipeline"]  # the round the "every benchmark" table shows
        staged = pipeline.get("pipeline_with_stages") or {}
        out["1"] = {"what": "ceiling: no-op Faust agent on the same broker", "events_per_s": ceiling}
        out["2"] = {
            "what": "full pipeline, sustained (backlog drain, one worker)",
            "core_events_per_s": last["rate"],
            "ratio_to_ceiling": pipeline["ratio_pipeline_to_ceiling_wall"],
            "with_stages_events_per_s": staged.get("rate"),
            "with_stages_ratio_to_ceiling": pipeline.get("ratio_with_stages_to_ceiling_wall"),
        }
    if system:
        out["3"] = {
            "what": "end-to-end latency, produce -> worker -> gateway -> /ws/track client",
            "reference_events_per_s": system["sustained"]["events_per_s"],
            "runs": [
                {k: run[k] for k in ("load", "target_rate", "achieved_rate", "latency_ms")} for run in system["latency"]
            ],
        }
        out["4"] = {
            "what": "peak RSS (VmHWM) per component; worker bytes per in-flight SKU",
            "peak_rss_bytes": system["peak_rss"],
            **system["state"],
        }
        out["6"] = {"what": "recovery after kill -9 of a worker holding the in-flight SKUs", **system["recovery"]}
        out["7"] = {
            "what": "47x flash-sale burst over 1M orders/day",
            **{k: v for k, v in system["burst"].items() if k != "samples"},
        }
    influx: dict[str, Any] = {}
    if system:
        influx.update(
            points_per_s=system["influx"]["points_per_s"],
            sku_event_points_per_s=system["influx"]["sku_event_points_per_s"],
        )
    if pipeline:
        last = pipeline["rounds"][-1]["pipeline"]
        influx["pipeline_sku_event_points_per_s"] = last["points"] / last["seconds"]
    if influx:
        out["5"] = {"what": "InfluxDB write rate during a backlog drain", **influx}
    return dict(sorted(out.items()))


def _item_rows(number: str, item: dict[str, Any]) -> list[tuple[str, str]]:
    """Readable rows of one item."""
    if number == "1":
        return [("no-op Faust agent (ceiling)", _rate(item["events_per_s"]))]
    if number == "2":
        return [
            (
                "full pipeline, core, one worker",
                f"{_rate(item['core_events_per_s'])}  ({_pct(item['ratio_to_ceiling'])} of ceiling)",
            ),
            (
                "full pipeline with all stages",
                f"{_rate(item['with_stages_events_per_s'])}  ({_pct(item['with_stages_ratio_to_ceiling'])} of ceiling)",
            ),
        ]
    if number == "3":
        rows = [("reference: orderradar worker drain", _rate(item["reference_events_per_s"]))]
        rows += [
            (f"at {run['load'].replace('pct', '%')}: {_rate(run['achieved_rate'])}", _latency(run["latency_ms"]))
            for run in item["runs"]
        ]
        return rows
    if number == "4":
        rows = [(f"peak RSS {name}", _mib(value)) for name, value in item["peak_rss_bytes"].items()]
        per_sku = item.get("bytes_per_in_flight_sku")
        rows.append(
            (
                f"worker bytes / in-flight SKU ({item['in_flight_skus']:,})",
                "-" if per_sku is None else f"{per_sku:,.0f} B",
            )
        )
        return rows
    if number == "5":
        rows = []
        if "points_per_s" in item:
            rows.append(("points written (all series)", _rate(item["points_per_s"])))
            rows.append(("sku_events points", _rate(item["sku_event_points_per_s"])))
        if "pipeline_sku_event_points_per_s" in item:
            rows.append(("sku_events points, core pipeline", _rate(item["pipeline_sku_event_points_per_s"])))
        return rows
    if number == "6":
        return [
            (
                f"restart -> probe in InfluxDB ({item['in_flight_skus']:,} SKUs)",
                f"{_seconds(item['restart_to_probe_written_s'])}  (session timeout {item['session_timeout_s']:.0f} s)",
            )
        ]
    if number == "7":
        return [
            (
                "baseline (1M orders/day) -> burst",
                f"{_rate(item['baseline_rate'])} -> "
                f"{_rate(item['burst']['achieved_rate'])} for "
                f"{item['burst']['seconds']:.0f} s",
            ),
            ("max lag", f"{item['max_lag_events']:,} events, {_seconds(item['max_lag_s'])}"),
            ("catch-up after the burst", _seconds(item["catch_up_s"]) if item["caught_up"] else "not caught up"),
        ]
    return []


def items_table(numbered: dict[str, dict[str, Any]]) -> str:
    lines = [f"{'#':<2} {'measure':<46} value", f"{'-' * 2} {'-' * 46} {'-' * 44}"]
    for number, item in numbered.items():
        for label, value in _item_rows(number, item):
            lines.append(f"{number:<2} {label:<46} {value}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only", action="append", choices=[b.name for b in BENCHMARKS], help="run only these (repeatable); default all"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check the harness, not the speed")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=BENCH_DIR / "results",
        help="where the combined report goes (default bench/results)",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds each benchmark may take")
    parser.add_argument(
        "--eight-million",
        action="store_true",
        help="the state item builds 8,000,000 in-flight SKUs instead of 1,000,000",
    )


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg": list(os.getloadavg()),
    }


def run_one(bench: Benchmark, smoke: bool, out: Path, timeout: float, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    argv = [
        sys.executable,
        str(BENCH_DIR / bench.script),
        *(bench.smoke if smoke else bench.full),
        *extra,
        "--out",
        str(out),
    ]
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
        extra = ("--eight-million",) if bench.name == "state" and args.eight_million and not args.smoke else ()
        report["results"][bench.name] = run_one(bench, args.smoke, out, args.timeout, extra)
    report["items"] = items(report["results"])
    path = args.results_dir / f"bench-{stamp}{'-smoke' if args.smoke else ''}.json"
    path.write_text(json.dumps(report, indent=2))
    print("issue #10, one run:")
    print(items_table(report["items"]))
    print("\nevery benchmark:")
    print(table(report))
    print(f"\nreport: {path}")
    return 0
