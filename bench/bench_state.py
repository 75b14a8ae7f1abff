"""Memory of the worker's hot state per in-flight SKU, and over a multi-day soak (issue #20).

Phases, all through the product's own code (``stream.contract.validate_record`` on the
events' JSON bytes, ``stream.core.lifecycle.apply_event``, the table codec
``stream.sinks.changelog.encode_value``, the changelog reader's ``stream.kafka.changelog_restore.put_value``
and ``stream.core.retention.sweep``):

1. build: ``--skus`` in-flight SKUs (1,000,000; ``--eight-million`` for 8,000,000) in orders
   of 1-3 lines, each line somewhere between ``paid`` and ``out_for_delivery`` with the
   events that brought it there (sources, hubs, warehouses, carriers, regions, devices,
   positions and promised times drawn from realistic sets), kept in a dict as the worker's
   table keeps them. Reported: RSS delta per SKU (after ``gc`` and ``malloc_trim``, so freed
   event objects are not counted) and the changelog encoding's bytes per SKU;
2. recover: a fresh process decodes the encoded values (what a restarted worker reads from
   its changelog) into a table: RSS delta per SKU and decode rate;
3. soak (a fresh process as well): ``--soak-days`` of event time compressed: orders arrive every simulated hour, their
   lines move a stage every few hours, most are delivered within 2-4 days, a share is
   abandoned mid-way; the retention sweep runs every simulated hour (closed: the shipped
   1 day; abandoned after ``--abandoned-after``, 3 days so the soak exercises it). RSS,
   orders and SKUs held are sampled every simulated 6 hours: flat once retention applies.

Prints JSON and a table and writes ``bench/results/state.json``.

    .venv/bin/python bench/bench_state.py                 # 1M SKUs, 8-day soak
    .venv/bin/python bench/bench_state.py --eight-million # 8M SKUs
    .venv/bin/python bench/bench_state.py --smoke         # harness check
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import platform
import random
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import psutil
from state_workload import IN_FLIGHT_STOPS, ROUTE, T0, OrderPlan, apply_record  # same directory

from stream.core.order_state import OrderState
from stream.core.retention import RetentionIndex, RetentionSettings, sweep
from stream.kafka.changelog_restore import put_value
from stream.sinks.changelog import encode_value

RESULTS = Path(__file__).resolve().parent / "results" / "state.json"


def rss() -> int:
    gc.collect()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # return freed arenas: count what is held
    return int(psutil.Process().memory_info().rss)


# -- 1 and 2: in-flight SKUs --------------------------------------------------------------------


def build(skus: int, seed: int) -> tuple[dict[str, Any], int, int, float]:
    rng = random.Random(seed)
    store: dict[str, Any] = {}
    built = events = number = 0
    started = time.process_time()
    while built < skus:
        number += 1
        plan = OrderPlan(number, T0 + timedelta(seconds=number * 0.05), rng)
        for line in plan.lines[: skus - built]:
            at = plan.placed
            for step in range(rng.randrange(IN_FLIGHT_STOPS) + 1):
                if step:
                    at += timedelta(minutes=rng.randint(20, 600))
                apply_record(store, *plan.event(line, step, at, rng))
                events += 1
            built += 1
    return store, built, events, time.process_time() - started


def write_values(store: dict[str, Any], path: Path) -> tuple[int, int]:
    """The changelog values (length-prefixed) of every order: count and bytes."""
    total = count = 0
    with path.open("wb") as out:
        for order_id, order in store.items():
            value, key = encode_value(order), order_id.encode()
            out.write(struct.pack("<II", len(key), len(value)) + key + value)
            total += len(value)
            count += 1
    return count, total


def read_values(path: Path) -> Iterator[tuple[bytes, bytes]]:
    data = path.read_bytes()
    at = 0
    while at < len(data):
        klen, vlen = struct.unpack_from("<II", data, at)
        at += 8
        yield data[at : at + klen], data[at + klen : at + klen + vlen]
        at += klen + vlen


def recover_child(path: Path) -> dict[str, Any]:
    """Decode every value into a table (run in a fresh process: a clean RSS baseline)."""
    before = rss()
    table: dict[str, Any] = {}
    started = time.process_time()
    wall = time.monotonic()
    skus = 0
    for key, value in read_values(path):
        put_value(table, key, value)  # as the worker's changelog reader does
        order = table[key.decode()]
        assert isinstance(order, OrderState)
        skus += len(order.skus)
    cpu, wall = time.process_time() - started, time.monotonic() - wall
    after = rss()
    return {
        "orders": len(table),
        "skus": skus,
        "rss_delta_bytes": after - before,
        "bytes_per_sku": (after - before) / skus,
        "decode_cpu_s": round(cpu, 2),
        "decode_wall_s": round(wall, 2),
        "orders_per_cpu_s": round(len(table) / cpu) if cpu else None,
    }


# -- 3: soak ---------------------------------------------------------------------------------


def soak(days: float, orders_per_hour: int, seed: int, retention: RetentionSettings) -> dict[str, Any]:
    rng = random.Random(seed)
    store: dict[str, Any] = {}
    index = RetentionIndex()
    closed_ns = int(retention.closed.total_seconds() * 1e9)
    abandoned_ns = int(retention.abandoned_after.total_seconds() * 1e9)
    # pending steps: hour -> [(plan, line, step, at)]
    pending: dict[int, list[tuple[OrderPlan, str, int, datetime, int]]] = {}
    hours = int(days * 24)
    samples: list[dict[str, Any]] = []
    number = forgotten = abandoned = events = 0
    base = rss()
    watermark = 0
    started = time.monotonic()
    for hour in range(hours):
        start = T0 + timedelta(hours=hour)
        for _ in range(orders_per_hour):
            number += 1
            plan = OrderPlan(number, start + timedelta(seconds=rng.uniform(0, 3599)), rng)
            # 2% of orders are abandoned: their lines stop at a random stage forever
            stop = rng.randrange(1, IN_FLIGHT_STOPS) if rng.random() < 0.02 else len(ROUTE)
            for line in plan.lines:
                pending.setdefault(hour, []).append((plan, line, 0, plan.placed, stop))
        due = sorted(pending.pop(hour, []), key=lambda item: item[3])
        for plan, line, step, at, stop in due:
            order = apply_record(store, *plan.event(line, step, at, rng))
            events += 1
            watermark = max(watermark, order.last_event_ns)  # the partition's newest event time
            index.note(order.order_id, (0, None), order.last_event_ns)
            if step + 1 < stop:
                after = at + timedelta(minutes=rng.randint(60, 900))
                pending.setdefault(int((after - T0).total_seconds() // 3600), []).append(
                    (plan, line, step + 1, after, stop)
                )
        for gone in sweep(store, index, {(0, None): watermark}, {0}, closed_ns, abandoned_ns):
            del store[gone.order_id]
            index.discard(gone.order_id)
            forgotten += 1
            abandoned += gone.abandoned
        if (hour + 1) % 6 == 0:
            skus = sum(len(o.skus) for o in store.values())
            open_skus = sum(1 for o in store.values() for s in o.skus.values() if not s.closed)
            samples.append(
                {
                    "day": round((hour + 1) / 24, 2),
                    "orders": len(store),
                    "skus": skus,
                    "open_skus": open_skus,
                    "rss_delta_bytes": rss() - base,
                    "forgotten": forgotten,
                    "abandoned": abandoned,
                }
            )
            last = samples[-1]
            print(
                f"  soak day {last['day']:>5}: {last['orders']:>8,} orders {last['skus']:>8,} SKUs "
                f"({last['open_skus']:,} open), RSS +{last['rss_delta_bytes'] / 2**20:,.0f} MiB",
                flush=True,
            )
    return {
        "days": days,
        "orders_per_hour": orders_per_hour,
        "orders": number,
        "events": events,
        "wall_s": round(time.monotonic() - started, 1),
        "retention": {
            "closed_s": retention.closed.total_seconds(),
            "abandoned_after_s": retention.abandoned_after.total_seconds(),
        },
        "samples": samples,
    }


def flatness(samples: list[dict[str, Any]], from_day: float) -> dict[str, Any] | None:
    """RSS and SKUs over the samples from ``from_day`` on: max/min (1.0 = perfectly flat)."""
    tail = [s for s in samples if s["day"] >= from_day]
    if len(tail) < 2:
        return None
    rss_values = [s["rss_delta_bytes"] for s in tail]
    skus = [s["skus"] for s in tail]
    return {
        "from_day": from_day,
        "rss_max_over_min": round(max(rss_values) / max(min(rss_values), 1), 3),
        "skus_max_over_min": round(max(skus) / max(min(skus), 1), 3),
        "rss_first_bytes": rss_values[0],
        "rss_last_bytes": rss_values[-1],
    }


def restart_phase(path: Path, tail: int) -> dict[str, Any]:
    """Restart after SIGKILL of a holder of the changelog in ``path`` (``bench_restore``):
    ``tail`` changelog records (versions of its first orders) come after its last snapshot."""
    from bench_restore import restart_after_kill  # it imports this module

    rng = random.Random(99)
    plan = OrderPlan(99_999_999, T0, rng)
    first = plan.event(plan.lines[0], 0, plan.placed, rng)
    return restart_after_kill(read_values(path), islice(read_values(path), tail), first)


def run(
    skus: int, seed: int, soak_days: float, orders_per_hour: int, retention: RetentionSettings, tail: int = 50_000
) -> dict[str, Any]:
    base = rss()
    print(f"building {skus:,} in-flight SKUs ...", flush=True)
    store, built, events, cpu = build(skus, seed)
    held = rss() - base
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "changelog.bin"
        orders, encoded = write_values(store, path)
        del store
        print("recovering them in a fresh process ...", flush=True)
        proc = subprocess.run(
            [sys.executable, __file__, "--recover-child", str(path)], capture_output=True, text=True, check=True
        )
        recovered = json.loads(proc.stdout.strip().splitlines()[-1])
        print("restart after kill -9 of a process holding them ...", flush=True)
        restart = restart_phase(path, tail)
    print(f"soak: {soak_days:g} days of event time, {orders_per_hour:,} orders per hour ...", flush=True)
    # in a fresh process too: the build's freed heap would hide the soak's growth
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--soak-child",
            str(soak_days),
            str(orders_per_hour),
            str(seed),
            retention.model_dump_json(),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    print(proc.stdout.rsplit("\n", 2)[0], flush=True)
    soaked = json.loads(proc.stdout.strip().splitlines()[-1])
    # flat once retention applies: after the longest life of a delivered order plus its retention
    settle = 4 + retention.closed.total_seconds() / 86_400
    return {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        },
        "in_flight": {
            "skus": built,
            "orders": orders,
            "events": events,
            "build_cpu_s": round(cpu, 1),
            "rss_delta_bytes": held,
            "bytes_per_sku_rss": round(held / built, 1),
            "encoded_bytes": encoded,
            "bytes_per_sku_encoded": round(encoded / built, 1),
            "skus_per_24_gib": int(24 * 2**30 / (held / built)),
        },
        "recovered": recovered,
        "restart_after_kill": restart,
        "soak": soaked,
        "soak_flat": flatness(soaked["samples"], settle),
    }


def table(r: dict[str, Any]) -> str:
    f, rec = r["in_flight"], r["recovered"]
    rows = [
        (f"in-flight SKUs built ({f['events']:,} events)", f"{f['skus']:,}"),
        ("RSS per in-flight SKU", f"{f['bytes_per_sku_rss']:,.0f} B"),
        ("changelog bytes per in-flight SKU", f"{f['bytes_per_sku_encoded']:,.0f} B"),
        ("in-flight SKUs per 24 GiB", f"{f['skus_per_24_gib']:,}"),
        ("RSS per SKU after recovery (fresh process)", f"{rec['bytes_per_sku']:,.0f} B"),
        ("changelog decode", f"{rec['orders_per_cpu_s']:,} orders/CPU s"),
    ]
    restart = r.get("restart_after_kill")
    if restart:
        rows.append(("restart after kill -9 to first event", f"{restart['with_snapshot']['to_first_event_s']:.1f} s"))
        rows.append(("same, no snapshot (whole changelog)", f"{restart['changelog_only']['to_first_event_s']:.1f} s"))
        rows.append(("local snapshot bytes per in-flight SKU", f"{restart['snapshot_bytes'] / f['skus']:,.0f} B"))
    flat = r.get("soak_flat")
    if flat:
        rows.append((f"soak RSS max/min from day {flat['from_day']:g}", f"{flat['rss_max_over_min']:.2f}"))
        rows.append((f"soak SKUs max/min from day {flat['from_day']:g}", f"{flat['skus_max_over_min']:.2f}"))
    return "\n".join(f"{label:<46} {value}" for label, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=1_000_000)
    parser.add_argument("--eight-million", action="store_true", help="8,000,000 in-flight SKUs")
    parser.add_argument("--soak-days", type=float, default=8.0)
    parser.add_argument("--soak-orders-per-hour", type=int, default=600)
    parser.add_argument(
        "--abandoned-after",
        default="3d",
        help="retention abandoned_after for the soak (default 3d, so a soak of a few days "
        "exercises it; the shipped default is 30d)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--restart-tail",
        type=int,
        default=50_000,
        help="changelog records written after the last local snapshot before the kill -9",
    )
    parser.add_argument("--smoke", action="store_true", help="2,000 SKUs, a 2-day soak: checks the harness")
    parser.add_argument("--recover-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--soak-child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--out", "--output", dest="output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.recover_child:
        print(json.dumps(recover_child(args.recover_child)))
        return 0
    if args.soak_child:
        days, per_hour, seed, retention_json = args.soak_child
        print(
            json.dumps(
                soak(float(days), int(per_hour), int(seed), RetentionSettings.model_validate_json(retention_json))
            )
        )
        return 0
    if args.eight_million:
        args.skus = 8_000_000
    if args.smoke:
        args.skus, args.soak_days, args.soak_orders_per_hour = 2_000, 2.0, 20
    retention = RetentionSettings.model_validate({"abandoned_after": args.abandoned_after})
    result = run(args.skus, args.seed, args.soak_days, args.soak_orders_per_hour, retention, args.restart_tail)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "soak"}, indent=2))
    print()
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
