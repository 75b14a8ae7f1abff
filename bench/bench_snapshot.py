"""CPU per local snapshot save, whole against incremental, and the restart from a base and its
deltas (issue #20).

Builds ``--skus`` in-flight SKUs with the state bench's workload (``bench_state.build``),
writes one changelog version per order to an embedded broker, then:

1. **whole**: the saver of ``--baseline`` (a git revision before the deltas, loaded from git)
   saves the partition, as it did every minute: CPU seconds per save;
2. **incremental**: :class:`stream.sinks.local_snapshot.LocalSnapshots` saves a base, then for
   ``--intervals`` intervals ``--changed`` of the orders get a new version, written through
   the product's :class:`stream.sinks.changelog.ChangelogSink` (whose keys the snapshots
   note) and the next save is timed (CPU seconds, a compaction included when one ran);
3. **restart**: one more interval is written and not saved (the tail), then a fresh process
   restores through :func:`stream.sinks.local_snapshot.restore_state` from the base and deltas,
   from the same image compacted into a base alone, and from the changelog alone (wall and
   CPU seconds from the restore's start, imports excluded; the files' read alone too).

    .venv/bin/python bench/bench_snapshot.py --skus 200000

Prints JSON and writes it to ``--out`` (``bench/results/snapshot.json``). CPU is the
process's (``time.process_time``: the writer threads included).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_restore import _create_topic, produce  # noqa: E402
from bench_state import build  # noqa: E402

from orderradar.devstack.broker import EmbeddedBroker  # noqa: E402
from orderradar.devstack.process import free_port  # noqa: E402
from stream.core.order_state import OrderState  # noqa: E402
from stream.sinks.changelog import ChangelogSink, Entry, encode_value  # noqa: E402
from stream.sinks.local_snapshot import LocalSnapshots, restore_state  # noqa: E402
from stream.sinks.outbox import Outbox  # noqa: E402
from stream.sinks.sink import Fence  # noqa: E402
from stream.sinks.snapshot_files import compact  # noqa: E402

TOPIC = "bench-snapshot-orders-changelog"
RESULTS = REPO / "bench" / "results" / "snapshot.json"


def baseline_snapshots(ref: str) -> Any:
    """``LocalSnapshots`` of ``ref``'s ``stream/sinks/local_snapshot.py``."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{ref}:stream/sinks/local_snapshot.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_local_snapshot.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_local_snapshot", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.LocalSnapshots


async def _cpu(run: Any) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    await run
    return time.process_time() - cpu, time.perf_counter() - wall


def _bump(order: OrderState) -> OrderState:
    return OrderState(order.order_id, 0, order.skus, order.last_event_ns, order.seq + 1, order.extensions)


async def saves(
    bootstrap: str, store: dict[str, Any], state: Path, ref: str, intervals: int, changed: float, seed: int
) -> dict[str, Any]:
    end = len(store)
    out: dict[str, Any] = {}
    whole = baseline_snapshots(ref)(state / "baseline", TOPIC)
    cpu, wall = await _cpu(whole.save(store, {0: end}))
    out["whole"] = {"baseline": ref, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "items": len(store)}

    snapshots = LocalSnapshots(state / "current", TOPIC)
    cpu, wall = await _cpu(snapshots.save(store, {0: end}))
    out["incremental"] = {"base": {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2)}, "deltas": []}
    rng = random.Random(seed)
    keys = list(store)
    per_interval = max(1, int(len(keys) * changed))
    outbox = Outbox(bootstrap)
    await outbox.start()
    try:
        sink = ChangelogSink(outbox, TOPIC)
        sink.on_written = snapshots.note
        for interval in range(intervals + 1):
            entries: list[Entry] = [(k, _bump(store[k]), 0) for k in rng.sample(keys, per_interval)]
            await sink.write(entries, Fence(owned=lambda partition: True))
            for key, value, _ in entries:
                store[key] = value
            if interval == intervals:
                break  # the tail: written, not saved
            compactions = snapshots.compactions
            cpu, wall = await _cpu(snapshots.save(store, {0: outbox.last_offsets[(TOPIC, 0)] + 1}))
            out["incremental"]["deltas"].append(
                {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3), "compacted": snapshots.compactions > compactions}
            )
    finally:
        await outbox.stop()
    out["incremental"]["changed_per_interval"] = per_interval
    out["tail_records"] = per_interval
    out["files"] = sorted((p.name, p.stat().st_size) for p in (state / "current").iterdir())
    return out


def _restarter(bootstrap: str, directory: str) -> None:
    store: dict[str, Any] = {}
    snapshots = LocalSnapshots(Path(directory), TOPIC) if directory else None
    started, cpu = time.perf_counter(), time.process_time()
    read = asyncio.run(restore_state(snapshots, bootstrap, TOPIC, [0], store))
    out = {
        "restore_s": round(time.perf_counter() - started, 2),
        "restore_cpu_s": round(time.process_time() - cpu, 2),
        "records_read": read,
        "orders": len(store),
    }
    if snapshots is not None:  # the files alone, read again (warm): what the deltas add
        cpu = time.process_time()
        snapshots.load(0, 0, 2**62)
        out["files_read_cpu_s"] = round(time.process_time() - cpu, 2)
    print(json.dumps(out))


def restart(bootstrap: str, state: Path) -> dict[str, Any]:
    compacted = state / "compacted"
    shutil.copytree(state / "current", compacted)
    cpu = time.process_time()
    compact(compacted, TOPIC, 0)
    out: dict[str, Any] = {"compaction_cpu_s": round(time.process_time() - cpu, 2)}
    for name, directory in (
        ("base_and_deltas", state / "current"),
        ("base_alone", compacted),
        ("changelog_only", None),
    ):
        proc = subprocess.run(
            [sys.executable, __file__, "--restarter", bootstrap, str(directory or "")],
            capture_output=True,
            text=True,
            check=True,
        )
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=200_000)
    parser.add_argument("--intervals", type=int, default=10)
    parser.add_argument("--changed", type=float, default=0.01, help="share of the orders changed per interval")
    parser.add_argument("--baseline", default="ec41743", help="git revision of the whole-partition saver")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--restarter", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.restarter:
        _restarter(*args.restarter)
        return 0
    store, skus, _, _ = build(args.skus, args.seed)
    store = {k: OrderState(v.order_id, 0, v.skus, v.last_event_ns, v.seq, v.extensions) for k, v in store.items()}
    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "skus": skus,
        "orders": len(store),
    }
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(free_port(), Path(tmp) / "broker").start()
        try:
            _create_topic(broker.bootstrap, TOPIC)
            asyncio.run(produce(broker.bootstrap, ((k.encode(), encode_value(v)) for k, v in store.items()), TOPIC))
            state = Path(tmp) / "state"
            result.update(
                asyncio.run(
                    saves(broker.bootstrap, store, state, args.baseline, args.intervals, args.changed, args.seed)
                )
            )
            result["restart"] = restart(broker.bootstrap, state)
        finally:
            broker.stop()
    deltas = [d["cpu_s"] for d in result["incremental"]["deltas"] if not d["compacted"]]
    result["summary"] = {
        "whole_save_cpu_s": result["whole"]["cpu_s"],
        "delta_save_cpu_s_median": sorted(deltas)[len(deltas) // 2] if deltas else None,
    }
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
