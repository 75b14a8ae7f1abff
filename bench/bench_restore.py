"""How long a worker takes to read a partition's ``orders`` changelog on assignment (issue #20).

The embedded broker never compacts, so a changelog holds every version of each order (one
per event). This bench writes ``--records`` versions (orders moving through their lines'
steps, values encoded by the product's codec ``stream.pipeline.encode_value``) to a fresh
changelog partition on an embedded broker, then times ``stream.changelog_restore.load_changelog``
reading it into an empty store. ``--baseline REF`` also times the loader of a git revision
(e.g. the one that decoded every version) against the same changelog.

    .venv/bin/python bench/bench_restore.py --records 200000 --baseline 40a9cc8

Prints JSON (records, keys, seconds, records/s per loader).
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
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_state import IN_FLIGHT_STOPS, T0, OrderPlan, apply_record  # noqa: E402

from orderradar.devstack.broker import EmbeddedBroker  # noqa: E402
from orderradar.devstack.process import free_port  # noqa: E402
from stream.changelog_restore import load_changelog  # noqa: E402
from stream.outbox import Outbox, OutRecord  # noqa: E402
from stream.pipeline import encode_value  # noqa: E402

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
    for name in ("stream/changelog_restore.py", "stream/batch_source.py"):
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


async def produce(bootstrap: str, data: list[tuple[bytes, bytes]]) -> None:
    outbox = Outbox(bootstrap)
    await outbox.start()
    try:
        chunk = 20_000
        for at in range(0, len(data), chunk):
            part = data[at:at + chunk]
            await outbox.send([OutRecord(TOPIC, value, key, 0) for key, value in part],
                              exact_end_offsets=at + chunk >= len(data))
    finally:
        await outbox.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline", help="git revision whose load_changelog is timed too")
    args = parser.parse_args(argv)
    data = versions(args.records, args.seed)
    keys = len({key for key, _ in data})
    loaders = {"current": load_changelog}
    if args.baseline:
        loaders[f"baseline {args.baseline}"] = baseline_loader(args.baseline)
    result: dict[str, Any] = {"records": len(data), "keys": keys, "loaders": {}}
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(free_port(), Path(tmp)).start()
        try:
            from kafka.admin import KafkaAdminClient, NewTopic
            admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
            admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
            admin.close()
            asyncio.run(produce(broker.bootstrap, data))
            for name, loader in loaders.items():
                store: dict[str, Any] = {}
                started = time.perf_counter()
                read = asyncio.run(loader(broker.bootstrap, TOPIC, [0], store))
                seconds = time.perf_counter() - started
                result["loaders"][name] = {"read": read, "restored": len(store), "seconds": round(seconds, 2),
                                           "records_per_s": round(read / seconds)}
        finally:
            broker.stop()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
