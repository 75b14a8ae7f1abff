"""Throughput of the stream worker's full pipeline against a no-op Faust agent, same broker.

Measured in one run, against one broker and one influxd (started here from
``orderradar.devstack`` on free ports, or ``--bootstrap`` / ``--influx-url``), each on a
fresh topic set and consumer group, with the input produced *before* the consumer starts
(a backlog: sustained consumption, no producer in the way):

1. ceiling: a no-op Faust agent, ``async for event in stream`` on raw bytes, with the
   worker's Faust settings; its rate is counted inside the agent from the first event to
   the last. Measured before and after the pipeline (the machine is shared: the mean of
   the two is the baseline, and their spread says how noisy the run was). A no-op
   ``take_events`` agent is measured too, for reference, and a no-op aiokafka ``getmany``
   loop in a consumer group: how the worker's source reads (``stream/kafka/batch_source.py``,
   no Faust event per record), the ceiling of the worker itself;
2. pipeline: ``orderradar worker`` (one process) on the same input: validation, dedup,
   state machine, rollup, aggregates, InfluxDB, outputs, changelog. Its rate is records
   per second between the first and the last ``sku_events`` point seen in InfluxDB
   (polled every 0.2 s; startup and group join are excluded, as for the ceiling);
3. two workers on 8 partitions sharing the same input (started together).

The input is the tests' seeded generator (``tests/stream/stream_eventgen.py``): 1% invalid,
5% duplicates, 5% reordered. Prints a table and JSON, writes ``bench/results/pipeline.json``.

    .venv/bin/python bench/bench_pipeline.py                  # 100,000 events
    .venv/bin/python bench/bench_pipeline.py --events 20000   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "stream"))  # the seeded generator of the tests

from stream_eventgen import generate  # noqa: E402
from stream_harness import produce  # noqa: E402

from config.settings import Settings, to_env  # noqa: E402
from orderradar.devstack.broker import EmbeddedBroker  # noqa: E402
from orderradar.devstack.influx import LocalInflux, create_database  # noqa: E402
from orderradar.devstack.process import ManagedProcess, free_port  # noqa: E402
from stream.kafka.admin import ensure_topics  # noqa: E402
from stream.topics import ORDER_EVENTS  # noqa: E402

RESULTS = REPO / "bench" / "results" / "pipeline.json"
SESSION_TIMEOUT_S = "6"


# -- the no-op agent (run in a child process) ---------------------------------------------


def noop_main(mode: str, expected: int) -> None:
    """Child process: a no-op Faust agent with the worker's settings; prints its rate."""
    import faust

    from config.settings import load_settings

    settings = load_settings()
    app = faust.App(
        settings.faust_app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=settings.partitions,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        web_enabled=False,
        broker_session_timeout=float(SESSION_TIMEOUT_S),
        broker_heartbeat_interval=1.5,
        stream_buffer_maxsize=4096,
        worker_redirect_stdouts=False,
    )
    topic = app.topic(
        settings.topic(ORDER_EVENTS),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )
    seen = {"n": 0, "first": 0.0, "cpu": 0.0}

    def done() -> None:
        elapsed = time.perf_counter() - seen["first"]
        cpu = time.process_time() - seen["cpu"]
        print(
            json.dumps(
                {
                    "events": seen["n"],
                    "seconds": elapsed,
                    "rate": seen["n"] / elapsed,
                    "cpu_seconds": cpu,
                    "rate_per_cpu_s": seen["n"] / cpu,
                }
            ),
            flush=True,
        )
        os._exit(0)

    async def each(stream: Any) -> None:
        async for _ in stream.events():
            if not seen["n"]:
                seen["first"], seen["cpu"] = time.perf_counter(), time.process_time()
            seen["n"] += 1
            if seen["n"] >= expected:
                done()

    async def take(stream: Any) -> None:
        async for events in stream.take_events(settings.worker_batch_size, within=settings.worker_batch_window_s):
            if not seen["n"]:
                seen["first"], seen["cpu"] = time.perf_counter(), time.process_time()
            seen["n"] += len(events)
            if seen["n"] >= expected:
                done()

    async def manual(stream: Any) -> None:
        manual_stream = stream.noack()
        batch: list[Any] = []
        async for event in manual_stream.events():
            if not seen["n"]:
                seen["first"], seen["cpu"] = time.perf_counter(), time.process_time()
            batch.append(event)
            seen["n"] += 1
            if len(batch) >= settings.worker_batch_size or seen["n"] >= expected:
                for e in batch:
                    await manual_stream.ack(e)
                batch.clear()
            if seen["n"] >= expected:
                done()

    agents = {"each": each, "take": take, "manual": manual}
    app.agent(topic, name="noop", concurrency=1)(agents[mode])
    faust.Worker(app, loglevel="warning", redirect_stdouts=False).execute_from_commandline()


def getmany_main(expected: int) -> None:
    """Child process: a no-op aiokafka ``getmany`` loop in a consumer group, as the worker's
    source reads (:mod:`stream.kafka.batch_source`); prints its rate."""
    from aiokafka import AIOKafkaConsumer

    from config.settings import load_settings
    from stream.kafka.batch_source import source_group

    settings = load_settings()

    async def consume() -> dict[str, float]:
        consumer = AIOKafkaConsumer(
            settings.topic(ORDER_EVENTS),
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=source_group(settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(float(SESSION_TIMEOUT_S) * 1000),
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        try:
            n, first, cpu = 0, 0.0, 0.0
            while n < expected:
                got = await consumer.getmany(timeout_ms=200, max_records=settings.worker_batch_size)
                if got and not n:
                    first, cpu = time.perf_counter(), time.process_time()
                n += sum(len(records) for records in got.values())
            elapsed, cpu_s = time.perf_counter() - first, time.process_time() - cpu
            return {
                "events": n,
                "seconds": elapsed,
                "rate": n / elapsed,
                "cpu_seconds": cpu_s,
                "rate_per_cpu_s": n / cpu_s,
            }
        finally:
            await consumer.stop()

    print(json.dumps(asyncio.run(consume())), flush=True)


# -- the orchestrating side ---------------------------------------------------------------


class Stack:
    def __init__(self, bootstrap: str | None, influx_url: str | None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
        self.broker = None if bootstrap else EmbeddedBroker(free_port(), self.dir).start()
        self.influx = None if influx_url else LocalInflux(free_port(), self.dir).start()
        self.bootstrap = bootstrap or (self.broker.bootstrap if self.broker else "")
        self.influx_url = influx_url or (self.influx.url if self.influx else "")

    def settings(self, partitions: int) -> Settings:
        tag = uuid.uuid4().hex[:8]
        settings = Settings(
            kafka_bootstrap=self.bootstrap,
            influx_url=self.influx_url,
            topic_prefix=f"b{tag}-",
            influx_db=f"bench_{tag}",
            partitions=partitions,
            data_dir=self.dir,
        )
        ensure_topics(settings)
        create_database(settings.influx_url, settings.influx_db)
        return settings

    def stop(self) -> None:
        if self.influx:
            self.influx.stop()
        if self.broker:
            self.broker.stop()


def child(name: str, argv: list[str], settings: Settings, log_dir: Path) -> ManagedProcess:
    env = {**os.environ, **to_env(settings), "PYTHONPATH": str(REPO)}
    return ManagedProcess(name, argv, log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log", env=env, cwd=REPO).start()


def ceiling(stack: Stack, records: list[tuple[bytes | None, bytes]], mode: str) -> dict[str, float]:
    settings = stack.settings(8)
    asyncio.run(produce(settings, settings.topic(ORDER_EVENTS), records))
    proc = child(
        f"noop-{mode}", [sys.executable, __file__, "--noop", mode, "--events", str(len(records))], settings, stack.dir
    )
    assert proc.proc is not None
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.proc.wait(timeout=900)  # the agent exits once it has seen every record
    text = proc.log_path.read_text()
    found = re.findall(r'\{"events".*\}', text)
    proc.stop()
    if not found:
        raise RuntimeError(f"no-op agent gave no result; log {proc.log_path}:\n{text[-2000:]}")
    return dict(json.loads(found[-1]))


def count_points(settings: Settings) -> int:
    response = httpx.get(
        f"{settings.influx_url}/query",
        timeout=30,
        params={"db": settings.influx_db, "q": 'SELECT count("event_id") FROM "sku_events"'},
    )
    series = response.json()["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def pipeline(
    stack: Stack, records: list[tuple[bytes | None, bytes]], valid: int, workers: int, stages: bool = False
) -> dict[str, Any]:
    settings = stack.settings(8)
    asyncio.run(produce(settings, settings.topic(ORDER_EVENTS), records))
    argv = [
        sys.executable,
        "-m",
        "orderradar.worker_command",
        "--session-timeout",
        SESSION_TIMEOUT_S,
        "--worker-log-level",
        "info",
        *(() if stages else ("--core-only",)),
    ]
    procs = [child(f"worker{i}", argv, settings, stack.dir) for i in range(workers)]
    handles = [psutil.Process(p.pid) for p in procs]

    def cpu() -> float:
        return sum(sum(h.cpu_times()[:2]) for h in handles)

    try:
        first_at = first_points = None
        first_cpu = 0.0
        deadline = time.monotonic() + 1800
        points = 0
        while time.monotonic() < deadline:
            for proc in procs:
                if not proc.alive():
                    raise RuntimeError(f"worker died; log {proc.log_path}:\n{proc.log_tail(30)}")
            points = count_points(settings)
            now = time.monotonic()
            if points and first_at is None:
                first_at, first_points, first_cpu = now, points, cpu()
            if points >= valid:
                break
            time.sleep(0.2)  # polling interval of the measurement
        end = time.monotonic()
        cpu_seconds = cpu() - first_cpu
    finally:
        for proc in procs:
            proc.stop()
    if first_at is None or first_points is None or points < valid:
        raise RuntimeError(f"pipeline did not finish: {points} of {valid} points")
    share = (valid - first_points) / valid  # of the input processed while the clock ran
    seconds = end - first_at
    per_worker = []
    for proc in procs:
        stats = re.findall(r"pipeline stats: PipelineStats\(batches=(\d+), records=(\d+)", proc.log_path.read_text())
        per_worker.append({"batches": int(stats[-1][0]), "records": int(stats[-1][1])} if stats else None)
    return {
        "workers": workers,
        "records": len(records),
        "points": valid,
        "seconds": seconds,
        "rate": len(records) * share / seconds,
        "cpu_seconds": cpu_seconds,
        "rate_per_cpu_s": len(records) * share / cpu_seconds,
        "per_worker": per_worker,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--influx-url", help="use this InfluxDB instead of starting one")
    parser.add_argument("--rounds", type=int, default=2, help="ceiling/pipeline pairs (default 2)")
    parser.add_argument("--skip-two", action="store_true", help="skip the two-worker measurement")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON result goes")
    parser.add_argument("--noop", choices=["each", "take", "manual", "getmany"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.noop == "getmany":
        getmany_main(args.events)
        return 0
    if args.noop:
        noop_main(args.noop, args.events)
        return 0

    generated = generate(seed=2026, total=args.events)
    records = [(r.key, r.value) for r in generated]
    valid = len({r.event.event_id for r in generated if r.event is not None})
    load_start = os.getloadavg()
    stack = Stack(args.bootstrap, args.influx_url)
    rounds: list[dict[str, Any]] = []
    try:
        # Alternate ceiling and pipeline: on a shared machine the load drifts, and each
        # ratio compares two neighbouring measurements.
        for _ in range(args.rounds):
            rounds.append({"ceiling": ceiling(stack, records, "each"), "pipeline": pipeline(stack, records, valid, 1)})
        last = ceiling(stack, records, "each")
        take = ceiling(stack, records, "take")
        getmany = ceiling(stack, records, "getmany")
        two = None if args.skip_two else pipeline(stack, records, valid, 2)
        # The whole product: the core plus the geo, delays/incidents and alerting stages.
        staged = pipeline(stack, records, valid, 1, stages=True)
    finally:
        stack.stop()
    ceilings = [r["ceiling"] for r in rounds] + [last]
    for i, r in enumerate(rounds):
        around = [ceilings[i], ceilings[i + 1]]
        r["ratio_wall"] = r["pipeline"]["rate"] / statistics.mean(c["rate"] for c in around)
        r["ratio_cpu"] = r["pipeline"]["rate_per_cpu_s"] / statistics.mean(c["rate_per_cpu_s"] for c in around)
    one = max((r["pipeline"] for r in rounds), key=lambda p: p["rate"])
    base_wall = statistics.median(c["rate"] for c in ceilings)
    base_cpu = statistics.median(c["rate_per_cpu_s"] for c in ceilings)
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_start": load_start,
            "load_avg_end": os.getloadavg(),
        },
        "input": {
            "records": len(records),
            "valid_events": valid,
            "invalid": "1%",
            "duplicates": "5%",
            "reordered": "5%",
            "partitions": 8,
        },
        "rounds": rounds,
        "ceiling_noop_each": {"runs": ceilings, "median_rate": base_wall, "median_rate_per_cpu_s": base_cpu},
        "noop_take_events": take,
        "noop_getmany": getmany,
        "ratio_pipeline_to_ceiling_wall": statistics.median(r["ratio_wall"] for r in rounds),
        "ratio_pipeline_to_ceiling_cpu": statistics.median(r["ratio_cpu"] for r in rounds),
        "pipeline_two_workers": two,
        "ratio_two_to_one_worker_wall": (two["rate"] / one["rate"]) if two else None,
        "pipeline_with_stages": staged,
        "ratio_with_stages_to_ceiling_wall": staged["rate"] / base_wall,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"\n{'measurement':<34} {'events/s':>9} {'per CPU-s':>10} {'ratio wall':>11} {'ratio CPU':>10}")
    for i, r in enumerate(rounds):
        c, p = r["ceiling"], r["pipeline"]
        print(f"{f'round {i + 1}: no-op agent (async for)':<34} {c['rate']:>9,.0f} {c['rate_per_cpu_s']:>10,.0f}")
        print(
            f"{f'round {i + 1}: full pipeline, 1 worker':<34} {p['rate']:>9,.0f} {p['rate_per_cpu_s']:>10,.0f} "
            f"{r['ratio_wall']:>11.0%} {r['ratio_cpu']:>10.0%}"
        )
    print(f"{'final: no-op agent (async for)':<34} {last['rate']:>9,.0f} {last['rate_per_cpu_s']:>10,.0f}")
    print(
        f"{'no-op agent (take_events)':<34} {take['rate']:>9,.0f} {take['rate_per_cpu_s']:>10,.0f} "
        f"{take['rate'] / base_wall:>11.0%} {take['rate_per_cpu_s'] / base_cpu:>10.0%}"
    )
    print(
        f"{'no-op aiokafka getmany (source)':<34} {getmany['rate']:>9,.0f} {getmany['rate_per_cpu_s']:>10,.0f} "
        f"{getmany['rate'] / base_wall:>11.0%} {getmany['rate_per_cpu_s'] / base_cpu:>10.0%}"
    )
    print(
        f"{'full pipeline, all stages':<34} {staged['rate']:>9,.0f} {staged['rate_per_cpu_s']:>10,.0f} "
        f"{staged['rate'] / base_wall:>11.0%} {staged['rate_per_cpu_s'] / base_cpu:>10.0%}"
    )
    if two:
        print(
            f"{'full pipeline, 2 workers':<34} {two['rate']:>9,.0f} {two['rate_per_cpu_s']:>10,.0f} "
            f"{two['rate'] / base_wall:>11.0%} {'':>10}  ({result['ratio_two_to_one_worker_wall']:.2f}x 1 worker)"
        )
    print(
        f"\npipeline / ceiling: {result['ratio_pipeline_to_ceiling_wall']:.0%} wall-clock, "
        f"{result['ratio_pipeline_to_ceiling_cpu']:.0%} per CPU-second (median over rounds)"
    )
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
