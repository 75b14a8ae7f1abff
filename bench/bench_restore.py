"""How long a worker takes to read a partition's ``orders`` changelog on assignment (issue #20).

The embedded broker never compacts, so a changelog holds every version of each order (one
per event). This bench writes ``--records`` versions (orders moving through their lines'
steps, values encoded by the product's codec ``stream.sinks.changelog.encode_value``) to a fresh
changelog partition on an embedded broker, then times ``stream.kafka.changelog_restore.load_changelog``
reading it into an empty store. ``--baseline REF`` also times the loader of a git revision
(e.g. the one that decoded every version) against the same changelog.

    .venv/bin/python bench/bench_restore.py --records 200000 --baseline 40a9cc8

Prints JSON (records, keys, seconds, records/s per loader).

:func:`restart_after_kill` is the state item's restart measure (``bench/bench_state.py``): a
holder process restores a changelog of in-flight orders, saves its local snapshot
(:class:`stream.sinks.local_snapshot.LocalSnapshots`, as a worker does every minute) and is killed
with SIGKILL after more changelog records came; a fresh process then restores through
:func:`stream.sinks.local_snapshot.restore_state` and applies one event, timed from its spawn.
The same restart without a snapshot (the whole changelog) is timed for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from state_workload import IN_FLIGHT_STOPS, T0, OrderPlan, apply_record  # noqa: E402

from orderradar.devstack.broker import EmbeddedBroker  # noqa: E402
from orderradar.devstack.process import free_port  # noqa: E402
from stream.kafka.changelog_restore import load_changelog  # noqa: E402
from stream.sinks.changelog import encode_value  # noqa: E402
from stream.sinks.local_snapshot import LocalSnapshots, restore_state  # noqa: E402
from stream.sinks.outbox import Outbox, OutRecord  # noqa: E402

TOPIC = "bench-restore-orders-changelog"


def versions(records: int, seed: int) -> list[tuple[bytes, bytes]]:
    """``records`` changelog versions: each event's order value after the event."""
    rng = random.Random(seed)
    store: dict[str, Any] = {}
    out: list[tuple[bytes, bytes]] = []
    number = 0
    while len(out) < records:
        number += 1
        plan = OrderPlan(number, T0 + timedelta(seconds=number * 0.05), rng)
        for line in plan.lines:
            at = plan.placed
            for step in range(rng.randrange(IN_FLIGHT_STOPS) + 1):
                if step:
                    at += timedelta(minutes=rng.randint(20, 600))
                order = apply_record(store, *plan.event(line, step, at, rng))
                out.append((order.order_id.encode(), encode_value(order)))
    return out[:records]


def baseline_loader(ref: str) -> Any:
    # the reader moved from batch_source.py to changelog_restore.py; a baseline may predate that
    for name in ("stream/kafka/changelog_restore.py", "stream/kafka/batch_source.py"):
        shown = subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:{name}"], capture_output=True, text=True)
        if shown.returncode == 0:
            source = shown.stdout
            break
    else:
        raise SystemExit(f"no changelog reader at {ref}")
    path = Path(tempfile.mkdtemp()) / "baseline_batch_source.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_batch_source", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_changelog


async def produce(bootstrap: str, data: Iterable[tuple[bytes, bytes]], topic: str = TOPIC) -> int:
    outbox = Outbox(bootstrap)
    await outbox.start()
    sent = 0
    try:
        chunk: list[OutRecord] = []
        for key, value in data:
            chunk.append(OutRecord(topic, value, key, 0))
            if len(chunk) == 20_000:
                await outbox.send(chunk)
                sent += len(chunk)
                chunk = []
        await outbox.send(chunk, exact_end_offsets=True)
        sent += len(chunk)
    finally:
        await outbox.stop()
    return sent


def _create_topic(bootstrap: str, topic: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()


# -- restart after kill -9 (the state item) ---------------------------------------------------

RESTART_TOPIC = "bench-restart-orders-changelog"


def _holder(bootstrap: str, state_dir: str) -> None:
    """Restore partition 0 like a worker, save the snapshot, say so, then wait to be killed."""
    store: dict[str, Any] = {}
    ends: dict[int, int] = {}
    asyncio.run(restore_state(None, bootstrap, RESTART_TOPIC, [0], store, ends_read=ends))
    snapshots = LocalSnapshots(Path(state_dir), RESTART_TOPIC)
    asyncio.run(snapshots.save(store, ends))
    print(
        json.dumps(
            {
                "holder_orders": len(store),
                "snapshot_offset": ends[0],
                "snapshot_bytes": snapshots.path(0).stat().st_size,
            }
        ),
        flush=True,
    )
    while True:
        time.sleep(3600)  # killed with SIGKILL by the bench


def _restarter(bootstrap: str, state_dir: str, spawned: float, event_json: str) -> None:
    """A restarted worker's state path: restore (snapshot + tail, or the whole changelog),
    then process one event; times from the parent's spawn (interpreter start and imports in)."""
    from state_workload import NOW

    from stream.contract import Rejection, validate_record
    from stream.core.lifecycle import apply_event
    from stream.core.order_state import new_order
    from stream.sinks.changelog import encode_value as encode

    store: dict[str, Any] = {}
    started = time.time()
    snapshots = LocalSnapshots(Path(state_dir), RESTART_TOPIC) if state_dir else None
    read = asyncio.run(restore_state(snapshots, bootstrap, RESTART_TOPIC, [0], store))
    restored = time.time()
    key, value = json.loads(event_json)
    event = validate_record(key.encode(), value.encode(), NOW)
    assert not isinstance(event, Rejection), event
    order, change = apply_event(store.get(event.order_id) or new_order(event.order_id, 0), event)
    assert change is not None
    store[event.order_id] = order
    encode(order)
    done = time.time()
    print(
        json.dumps(
            {
                "changelog_records_read": read,
                "orders": len(store),
                "imports_s": round(started - spawned, 2),
                "restore_s": round(restored - started, 2),
                "to_first_event_s": round(done - spawned, 2),
            }
        ),
        flush=True,
    )


def restart_after_kill(
    values: Iterable[tuple[bytes, bytes]], tail: Iterable[tuple[bytes, bytes]], first_event: tuple[bytes, bytes]
) -> dict[str, Any]:
    """Kill -9 a holder of ``values`` (one changelog version per order) after ``tail`` more
    versions were written, restart, time to ``first_event`` processed (see the module doc)."""
    me = [sys.executable, str(Path(__file__).resolve())]
    event = json.dumps([first_event[0].decode(), first_event[1].decode()])
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(free_port(), Path(tmp) / "broker").start()
        try:
            _create_topic(broker.bootstrap, RESTART_TOPIC)
            started = time.monotonic()
            records = asyncio.run(produce(broker.bootstrap, values, RESTART_TOPIC))
            produced_s = time.monotonic() - started
            state_dir = str(Path(tmp) / "state")
            holder = subprocess.Popen([*me, "--holder", broker.bootstrap, state_dir], stdout=subprocess.PIPE, text=True)
            assert holder.stdout is not None
            held = json.loads(holder.stdout.readline())
            tail_records = asyncio.run(produce(broker.bootstrap, tail, RESTART_TOPIC))
            holder.kill()  # SIGKILL: no clean stop, no final snapshot
            holder.wait()
            out: dict[str, Any] = {
                "changelog_records": records + tail_records,
                "produce_s": round(produced_s, 1),
                **held,
                "tail_records": tail_records,
                "killed_with": "SIGKILL",
            }
            for name, directory in (("with_snapshot", state_dir), ("changelog_only", "")):
                spawned = time.time()
                proc = subprocess.run(
                    [*me, "--restarter", broker.bootstrap, directory, repr(spawned), event],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            return out
        finally:
            broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline", help="git revision whose load_changelog is timed too")
    parser.add_argument("--holder", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--restarter", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.holder:
        _holder(*args.holder)
        return 0
    if args.restarter:
        bootstrap, state_dir, spawned, event = args.restarter
        _restarter(bootstrap, state_dir, float(spawned), event)
        return 0
    data = versions(args.records, args.seed)
    keys = len({key for key, _ in data})
    loaders = {"current": load_changelog}
    if args.baseline:
        loaders[f"baseline {args.baseline}"] = baseline_loader(args.baseline)
    result: dict[str, Any] = {"records": len(data), "keys": keys, "loaders": {}}
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(free_port(), Path(tmp)).start()
        try:
            _create_topic(broker.bootstrap, TOPIC)
            asyncio.run(produce(broker.bootstrap, data))
            for name, loader in loaders.items():
                store: dict[str, Any] = {}
                started = time.perf_counter()
                read = asyncio.run(loader(broker.bootstrap, TOPIC, [0], store))
                seconds = time.perf_counter() - started
                result["loaders"][name] = {
                    "read": read,
                    "restored": len(store),
                    "seconds": round(seconds, 2),
                    "records_per_s": round(read / seconds),
                }
        finally:
            broker.stop()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
