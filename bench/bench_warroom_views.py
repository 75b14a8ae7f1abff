"""Cost of the war-room views (heatmap cells and national KPIs) per tick with many SKUs in flight.

Runs the worker's own pipeline core, geo stage and delays stage in-process (no broker, no
InfluxDB: the batch's outputs are counted, not sent):

1. load: ``--skus`` SKUs (two per order) each get a ``paid`` and a ``picked`` event with a
   position somewhere in eastern China (views not published meanwhile);
2. ticks: ``--ticks`` batches of ``--changed`` events, each moving random SKUs one stage on
   with a new position; the delays stage publishes its views after every batch
   (``interval_s = 0``). Reported, in CPU milliseconds of this process: the views' share of
   a batch (``views_ms``: the stage's ``_views_out`` and, where it exists, ``_refresh``, the
   upkeep of the incremental counters), the whole delays stage per batch, and an idle tick
   (nothing changed).

``--stage-file`` measures another version of ``stream/stages/delays_stage.py`` (e.g. the
one before the incremental counters: ``git show <commit>:stream/stages/delays_stage.py``).

    .venv/bin/python bench/bench_warroom_views.py --skus 300000
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import statistics
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stream.contract import OrderEvent, Status
from stream.core.sla import load_sla_rules
from stream.pipeline import Pipeline, PipelineConfig, Topics
from stream.stage_api import BatchContext, SourceRecord
from stream.stages.delays_stage import DelaysStage, DelaysTopics
from stream.stages.geo_stage import GeoStage

RESULTS = Path(__file__).resolve().parent / "results" / "warroom_views.json"
PARTITIONS = 12
ROUTE = [Status.PAID, Status.PICKED, Status.PACKED, Status.OUTBOUND_SCAN, Status.LINEHAUL, Status.HUB_ARRIVAL]


def _record(event: OrderEvent, offset: int) -> SourceRecord:
    partition = zlib.crc32(event.order_id.encode()) % PARTITIONS
    return SourceRecord(
        "order-events",
        partition,
        offset,
        None,
        event.order_id.encode(),
        event.model_dump_json(exclude_none=True).encode(),
    )


def _stage_class(path: Path | None) -> type[DelaysStage]:
    if path is None:
        return DelaysStage
    spec = importlib.util.spec_from_file_location("bench_delays_stage", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.DelaysStage  # type: ignore[no-any-return]


class Harness:
    def __init__(self, now: datetime, stage: type[DelaysStage]) -> None:
        topics = Topics("dlq", "updates", "warroom", "influx-dlq", "changelog")
        self.store: dict[str, Any] = {}
        # The pipeline's core only (its sinks are not used): state, validation, aggregates.
        self.pipeline = Pipeline(PipelineConfig(topics), self.store, None, None)  # type: ignore[arg-type]
        self.geo = GeoStage()
        self.delays = stage(load_sla_rules(), DelaysTopics("incidents", "warroom"), self.geo, interval_s=1e12)
        self.now = now
        self.offset = 0
        #: CPU seconds spent in the views' methods since the last reset.
        self.views_s = 0.0
        for name in ("_views_out", "_refresh"):
            method = getattr(self.delays, name, None)
            if method is not None:
                setattr(self.delays, name, self._timed(method))

    def _timed(self, method: Any) -> Any:
        def timed(*args: Any) -> Any:
            started = time.process_time()
            try:
                return method(*args)
            finally:
                self.views_s += time.process_time() - started

        return timed

    async def batch(self, events: list[OrderEvent]) -> tuple[float, int]:
        """Run one batch; the delays stage's CPU seconds and the messages it emitted."""
        records = []
        for event in events:
            records.append(_record(event, self.offset))
            self.offset += 1
        ctx = BatchContext(self.now, records, self.store, self.pipeline.aggregates)
        self.pipeline._core(ctx)
        await self.geo.process(ctx)
        started = time.process_time()
        await self.delays.process(ctx)
        spent = time.process_time() - started
        self.store.update(ctx.orders)
        return spent, len(ctx._emitted)

    async def idle(self) -> tuple[float, int]:
        ctx = BatchContext(self.now, (), self.store, self.pipeline.aggregates)
        started = time.process_time()
        await self.delays.tick(ctx)
        return time.process_time() - started, len(ctx._emitted)


def _event(order: int, sku: int, step: int, at: datetime, rng: random.Random) -> OrderEvent:
    return OrderEvent(
        event_id=f"O{order}-S{sku}-{step}",
        order_id=f"O{order}",
        sku=f"S{sku}",
        status=ROUTE[step],
        event_time=at,
        source="bench",
        carrier="SF",
        warehouse="WH-1",
        region="Zhejiang",
        lat=rng.uniform(22.0, 40.0),
        lon=rng.uniform(105.0, 122.0),
    )


async def run(skus: int, ticks: int, changed: int, seed: int, stage_file: Path | None = None) -> dict[str, Any]:
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    at = now - timedelta(minutes=30)
    harness = Harness(now, _stage_class(stage_file))
    orders = skus // 2
    steps = {}
    load = [
        _event(o, s, step, at + timedelta(seconds=step), rng)
        for o in range(orders)
        for s in range(2)
        for step in range(2)
    ]
    for o in range(orders):
        steps[(o, 0)] = steps[(o, 1)] = 1
    started = time.process_time()
    for i in range(0, len(load), 5000):
        await harness.batch(load[i : i + 5000])
    load_s = time.process_time() - started
    harness.delays.interval_s = 0.0
    await harness.batch([])  # the first full publication after the load is not a tick's cost
    await harness.idle()
    busy: list[float] = []
    views: list[float] = []
    emitted: list[int] = []
    for t in range(ticks):
        events = []
        for o in rng.sample(range(orders), changed):
            s = rng.randrange(2)
            step = steps[(o, s)] = min(steps[(o, s)] + 1, len(ROUTE) - 1)
            events.append(_event(o, s, step, at + timedelta(minutes=1 + t / 10), rng))
        harness.views_s = 0.0
        spent, n = await harness.batch(events)
        views.append(harness.views_s * 1000)
        busy.append(spent)
        emitted.append(n)
    idle = [(await harness.idle())[0] for _ in range(ticks)]
    ms = sorted(x * 1000 for x in busy)
    views.sort()
    return {
        "stage": str(stage_file or "stream/stages/delays_stage.py"),
        "skus_in_flight": len(harness.delays.timelines[None].skus),
        "changed_per_tick": changed,
        "ticks": ticks,
        "load_cpu_s": round(load_s, 1),
        "views_ms_median": round(statistics.median(views), 2),
        "views_ms_p90": round(views[int(0.9 * (len(views) - 1))], 2),
        "tick_ms_median": round(statistics.median(ms), 2),
        "tick_ms_p90": round(ms[int(0.9 * (len(ms) - 1))], 2),
        "idle_tick_ms_median": round(statistics.median(idle) * 1000, 3),
        "messages_per_tick_median": statistics.median(emitted),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=300_000)
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--changed", type=int, default=200, help="events per tick (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stage-file", type=Path, help="measure this delays_stage.py instead")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.skus, args.ticks, args.changed, args.seed, args.stage_file))
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
