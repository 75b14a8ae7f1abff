"""Throughput of the delays stage (SLA timers + clustering) with many SKUs in flight.

Phases, all through ``DelaysEngine`` with the shipped ``config/sla.yaml``:

1. load: one ``paid`` event for each of ``--skus`` SKUs (200,000 in flight);
2. steady: ``--events`` scan events moving random SKUs along their route over 30 hours
   of event time (timers fire, incidents are evaluated every 5 minutes, and a hub that
   stops scanning strands its SKUs, which stall after 24 h and become an incident);
3. timers: the watermark jumps far ahead, firing every pending at-risk / breach timer.

Baselines measured in the same run on the same inputs: a plain dict update per event
(``state[key] = (status, time)``) and a heapq pop per timer. Rates are per second of
process CPU time (the work is single-threaded, and CPU time is not inflated by other
processes on a shared machine); wall-clock seconds are reported too. Prints JSON and a
table and writes ``bench/results/delays.json``.

    .venv/bin/python bench/bench_delays.py            # full run (200,000 SKUs)
    .venv/bin/python bench/bench_delays.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import heapq
import json
import platform
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from state_workload import ROUTE  # same directory: one line's route through two hubs

from stream.contract import OrderEvent, SkuClass, Status
from stream.core.delays_engine import DelaysEngine
from stream.core.sla import load_sla_rules

RESULTS = Path(__file__).resolve().parent / "results" / "delays.json"
T0 = datetime(2026, 3, 2, tzinfo=UTC)
WAREHOUSES = [f"WH-{i:02d}" for i in range(12)]  # cluster attributes are drawn independently
HUBS = [f"HUB-{i:02d}" for i in range(24)]
CARRIERS = ["SF", "ZTO", "YTO", "STO", "JD"]
REGIONS = ["Zhejiang", "Jiangsu", "Shanghai", "Anhui", "Guangdong", "Sichuan", "Hubei", "Shandong"]
CHANNELS = ["tmall", "jd", "douyin", "pdd"]
IN_TRANSIT_FROM = ROUTE.index(Status.LINEHAUL)
OUTAGE_HUB = "HUB-03"


class Sku:
    """A SKU's fixed attributes and how far along its route it is."""

    __slots__ = ("order", "warehouse", "hub", "carrier", "region", "channel", "step")

    def __init__(self, order: int, rng: random.Random) -> None:
        self.order = order
        self.warehouse = rng.choice(WAREHOUSES)
        self.hub = rng.choice(HUBS)
        self.carrier = rng.choice(CARRIERS)
        self.region = rng.choice(REGIONS)
        self.channel = rng.choice(CHANNELS)
        self.step = rng.randrange(len(ROUTE) - 1)  # sources join mid-flow: any first status


def _event(sku: Sku, seconds: float, rng: random.Random) -> OrderEvent:
    """The SKU's current step as a trusted event, built without validation (the worker
    hands over validated events; validation is not what this bench measures)."""
    status = ROUTE[sku.step]
    at_hub = sku.step >= IN_TRANSIT_FROM
    node = sku.hub if at_hub else sku.warehouse
    return OrderEvent.model_construct(
        event_id=f"E{sku.order}-{sku.step}",
        order_id=f"SO{sku.order:07d}",
        sku="SKU-1",
        qty=1,
        status=status,
        event_time=T0 + timedelta(seconds=seconds),
        source="pda",
        channel=sku.channel,
        warehouse=sku.warehouse,
        node=node,
        carrier=sku.carrier if sku.step >= 3 else None,
        device_id=f"PDA-{node}-{rng.randint(1, 4)}",
        region=sku.region,
        lat=30.0 + HUBS.index(sku.hub) * 0.05 if at_hub else 31.0 + WAREHOUSES.index(sku.warehouse) * 0.05,
        lon=120.0 + HUBS.index(sku.hub) * 0.05 if at_hub else 121.0 + WAREHOUSES.index(sku.warehouse) * 0.05,
        promised_by=T0 + timedelta(days=3),
        attributes={},
        sku_class=SkuClass.STANDARD,
    )


def build(skus: int, events: int, seed: int) -> tuple[list[tuple[int, OrderEvent]], list[tuple[int, OrderEvent]]]:
    """``skus`` first events within an hour, then ``events`` steps over 30 hours."""
    rng = random.Random(seed)
    fleet = [Sku(n, rng) for n in range(skus)]
    load = [(n % 4, _event(sku, n * 3600.0 / skus, rng)) for n, sku in enumerate(fleet)]
    steady: list[tuple[int, OrderEvent]] = []
    t = 3600.0
    step = 30 * 3600.0 / max(events, 1)  # 30 hours: stalls (24 h) and late SKUs appear
    while len(steady) < events:
        sku = fleet[rng.randrange(skus)]
        if sku.step >= len(ROUTE) - 1:
            continue  # delivered
        if sku.hub == OUTAGE_HUB and sku.step >= IN_TRANSIT_FROM:
            continue  # behind a hub that stopped scanning
        sku.step += 1
        t += step
        steady.append((sku.order % 4, _event(sku, t, rng)))
    return load, steady


class Timer:
    """CPU and wall time of a block."""

    def __enter__(self) -> Timer:
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = time.process_time() - self._cpu
        self.wall = time.perf_counter() - self._wall


def _feed(engine: DelaysEngine, batch: list[tuple[int, OrderEvent]], size: int) -> tuple[Timer, int, int]:
    """Events through the engine in per-partition batches: timer, transitions, incident events."""
    transitions = incidents = 0
    timer = Timer().__enter__()
    for i in range(0, len(batch), size):
        chunk = batch[i : i + size]
        by_partition: dict[int, list[OrderEvent]] = {}
        for partition, event in chunk:
            by_partition.setdefault(partition, []).append(event)
        for partition, events in by_partition.items():
            result = engine.process(events, partition=partition)
            transitions += len(result.transitions)
            incidents += len(result.incidents)
    timer.__exit__()
    return timer, transitions, incidents


def _baseline_dict(batch: list[tuple[int, OrderEvent]]) -> Timer:
    state: dict[str, tuple[str, datetime]] = {}
    with Timer() as timer:
        for _partition, event in batch:
            state[f"{event.order_id}|{event.sku}"] = (event.status.value, event.event_time)
    return timer


def _baseline_heap(n: int, seed: int) -> Timer:
    rng = random.Random(seed)
    heap = [(rng.random(), f"k{i}") for i in range(n)]
    heapq.heapify(heap)
    with Timer() as timer:
        while heap:
            heapq.heappop(heap)
    return timer


def _time_evaluations(engine: DelaysEngine) -> dict[str, float]:
    """Wrap the detectors' evaluation step to report its share (the core has no clock)."""
    spent = {"evaluations": 0.0, "cpu_s": 0.0}
    for detector in (engine.delay_incidents, engine.dq_incidents):
        evaluate = detector._evaluate

        def timed(slot: int, at: float, evaluate: Any = evaluate) -> Any:
            start = time.process_time()
            try:
                return evaluate(slot, at)
            finally:
                spent["cpu_s"] += time.process_time() - start
                spent["evaluations"] += 1

        detector._evaluate = timed  # type: ignore[method-assign]
    return spent


def run(skus: int, events: int, batch: int, seed: int) -> dict[str, Any]:
    load, steady = build(skus, events, seed)
    engine = DelaysEngine(load_sla_rules())
    evaluation = _time_evaluations(engine)
    load_t, _, _ = _feed(engine, load, batch)
    in_flight = engine.stats()["skus"]
    before = dict(evaluation)
    steady_t, steady_transitions, steady_incidents = _feed(engine, steady, batch)
    steady_eval_cpu = evaluation["cpu_s"] - before["cpu_s"]
    steady_evals = int(evaluation["evaluations"] - before["evaluations"])
    stats = engine.stats()
    pending, fires_before = stats["pending_timers"], stats["timer_fires"]
    with Timer() as timers_t:
        jump = engine.advance_watermark(T0 + timedelta(days=10))
    fired = engine.stats()["timer_fires"] - fires_before
    base_events = _baseline_dict(load + steady)
    base_timers = _baseline_heap(max(fired, 1), seed)
    all_events = len(load) + len(steady)
    events_per_s = all_events / (load_t.cpu + steady_t.cpu)
    base_events_per_s = all_events / base_events.cpu
    timers_per_s = fired / timers_t.cpu if timers_t.cpu else 0.0
    base_timers_per_s = max(fired, 1) / base_timers.cpu
    return {
        "bench": "delays",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "clock": "process CPU time (wall seconds alongside)",
        "params": {"skus": skus, "events": events, "batch": batch, "seed": seed},
        "in_flight_skus": in_flight,
        "load": {
            "events": len(load),
            "cpu_s": round(load_t.cpu, 3),
            "wall_s": round(load_t.wall, 3),
            "events_per_s": round(len(load) / load_t.cpu),
        },
        "steady": {
            "events": len(steady),
            "cpu_s": round(steady_t.cpu, 3),
            "wall_s": round(steady_t.wall, 3),
            "events_per_s": round(len(steady) / steady_t.cpu),
            "transitions": steady_transitions,
            "incident_events": steady_incidents,
            # 30 h of event time pass in this phase: 360 five-minute evaluations per
            # detector, which a live worker spreads over 30 hours
            "incident_evaluations": steady_evals,
            "incident_evaluation_cpu_s": round(steady_eval_cpu, 3),
            "events_per_s_without_evaluations": round(len(steady) / (steady_t.cpu - steady_eval_cpu)),
        },
        "timers": {
            "pending": pending,
            "fired": fired,
            "cpu_s": round(timers_t.cpu, 3),
            "wall_s": round(timers_t.wall, 3),
            "advances_per_s": round(timers_per_s),
            "transitions": len(jump.transitions),
            "incident_events": len(jump.incidents),
        },
        "baseline": {
            "dict_update_events_per_s": round(base_events_per_s),
            "heap_pop_per_s": round(base_timers_per_s),
        },
        "ratios": {
            "events_vs_dict_update": round(events_per_s / base_events_per_s, 4),
            "timers_vs_heap_pop": round(timers_per_s / base_timers_per_s, 4),
        },
        "engine": {"events_per_s": round(events_per_s), **engine.stats()},
    }


def table(r: dict[str, Any]) -> str:
    rows = [
        ("in-flight SKUs", f"{r['in_flight_skus']:,}", ""),
        ("load (paid) events/s", f"{r['load']['events_per_s']:,}", f"{r['load']['events']:,} events"),
        (
            "steady events/s",
            f"{r['steady']['events_per_s']:,}",
            f"{r['steady']['transitions']:,} transitions, {r['steady']['incident_events']} incident events",
        ),
        (
            "  without incident evaluations",
            f"{r['steady']['events_per_s_without_evaluations']:,}",
            f"{r['steady']['incident_evaluations']} evaluations took {r['steady']['incident_evaluation_cpu_s']} s",
        ),
        ("all events/s", f"{r['engine']['events_per_s']:,}", f"x{r['ratios']['events_vs_dict_update']} of dict update"),
        ("baseline dict update/s", f"{r['baseline']['dict_update_events_per_s']:,}", ""),
        (
            "timer advances/s",
            f"{r['timers']['advances_per_s']:,}",
            f"{r['timers']['fired']:,} fired, x{r['ratios']['timers_vs_heap_pop']} of heap pop",
        ),
        ("baseline heap pop/s", f"{r['baseline']['heap_pop_per_s']:,}", ""),
        ("open incidents at the end", f"{r['engine']['open_incidents']}", ""),
    ]
    width = max(len(a) for a, _, _ in rows)
    lines = [f"{'metric'.ljust(width)}  {'value':>12}  note", "-" * (width + 40)]
    lines += [f"{a.ljust(width)}  {b:>12}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="20,000 SKUs, 40,000 events")
    parser.add_argument("--out", "--output", dest="output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.skus, args.events = 20_000, 40_000
    result = run(args.skus, args.events, args.batch, args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    print()
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
