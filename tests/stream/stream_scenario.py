"""Running a worker subprocess over generated input, and checking the stream invariants.

The invariants (each test asserts all of them):

1. InfluxDB holds exactly one ``sku_events`` point per valid event_id: the list of
   event_ids in InfluxDB has no repeat and equals the set of valid input events;
2. every invalid input record is in ``order-events-dlq`` (its exact bytes) with a reason;
3. the worker's final state (the last changelog value of every order) equals a pure replay
   of the input (:func:`stream.core.lifecycle.replay` over the records in order), and the last
   ``order-updates`` snapshot of every order shows the replayed status of each SKU.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from stream_eventgen import Record, valid_events
from stream_harness import committed, count_points, event_ids_in_influx, produce, read_topic, start_worker

from config.settings import Settings
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until
from stream.core import dlq
from stream.core.lifecycle import replay
from stream.core.order_state import OrderState
from stream.kafka.batch_source import source_group
from stream.sinks.changelog import decode_value
from stream.topics import ORDER_EVENTS, ORDER_EVENTS_DLQ, ORDER_UPDATES, changelog_topic

log = logging.getLogger(__name__)


@dataclass
class Run:
    settings: Settings
    records: Sequence[Record]
    log_dir: Path
    extra_args: tuple[str, ...] = ()
    produced: dict[int, int] = field(default_factory=dict)
    worker: ManagedProcess | None = None
    restarts: int = 0

    @property
    def valid_ids(self) -> set[str]:
        return {r.event.event_id for r in self.records if r.event is not None}

    def produce(self) -> None:
        self.produced = asyncio.run(
            produce(self.settings, self.settings.topic(ORDER_EVENTS), [(r.key, r.value) for r in self.records])
        )

    def produce_more(self, records: Sequence[Record]) -> None:
        """Produce ``records`` too (part of ``self.records``), adding to the counts to commit."""
        more = asyncio.run(
            produce(self.settings, self.settings.topic(ORDER_EVENTS), [(r.key, r.value) for r in records])
        )
        self.produced = {p: self.produced.get(p, 0) + more.get(p, 0) for p in set(self.produced) | set(more)}

    def committed_offsets(self) -> dict[int, int]:
        return asyncio.run(committed(self.settings, source_group(self.settings), self.settings.topic(ORDER_EVENTS)))

    def all_committed(self) -> bool:
        """The worker group has committed every record produced so far."""
        offsets = self.committed_offsets()
        return all(offsets.get(p, 0) >= n for p, n in self.produced.items())

    def wait_taken_over(self, second: ManagedProcess, stopped_at: float, session_timeout_s: float) -> None:
        """Until ``second`` has committed every partition while the first worker is stopped
        (since ``stopped_at``, monotonic): it can own them only once that session expired."""

        def took_over() -> bool:
            if not second.alive():
                raise AssertionError(f"second worker died:\n{second.log_tail(40)}")
            return time.monotonic() - stopped_at > session_timeout_s and self.all_committed()

        wait_until(took_over, timeout=240, interval=0.5, what="second worker took over all partitions")

    def start(self) -> None:
        path = self.log_dir / f"worker-{self.restarts}.log"
        self.worker = start_worker(self.settings, path, *self.extra_args)

    def restart_hard(self) -> None:
        assert self.worker is not None
        self.worker.kill9()
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def check_alive(self) -> None:
        if self.worker is not None and not self.worker.alive():
            raise AssertionError(
                f"worker exited with {self.worker.proc and self.worker.proc.returncode}; "
                f"log {self.worker.log_path}:\n{self.worker.log_tail(40)}"
            )

    def wait_points(self, fraction: float, timeout: float) -> None:
        target = int(len(self.valid_ids) * fraction)

        def reached() -> bool:
            self.check_alive()
            return count_points(self.settings) >= target

        wait_until(reached, timeout, interval=0.2, what=f"{fraction:.0%} of the points")

    def wait_done(self, timeout: float) -> None:
        """Every input record committed by the worker's group (so all its effects are out)."""
        offsets: dict[int, int] = {}

        def done() -> bool:
            self.check_alive()
            offsets.update(self.committed_offsets())
            return all(offsets.get(p, 0) >= n for p, n in self.produced.items())

        try:
            wait_until(done, timeout, interval=0.5, what="all input committed")
        except TimeoutError as exc:
            assert self.worker is not None
            raise AssertionError(
                f"{exc}: committed {dict(sorted(offsets.items()))}, produced "
                f"{dict(sorted(self.produced.items()))}, points {count_points(self.settings)}; "
                f"log {self.worker.log_path}"
            ) from None


@contextmanager
def running_worker(
    settings: Settings, records: Sequence[Record], log_dir: Path, extra_args: tuple[str, ...] = ()
) -> Iterator[Run]:
    """A worker over ``records`` (produced first), stopped however the block ends."""
    run = Run(settings, records, log_dir, extra_args)
    run.produce()
    run.start()
    try:
        yield run
    finally:
        run.stop()


@contextmanager
def second_worker(run: Run, settings: Settings) -> Iterator[ManagedProcess]:
    """A second worker in the group of ``run``'s. On leaving, ``run``'s worker is resumed
    (a test may have SIGSTOPped it) and the second one is stopped."""
    second = start_worker(settings, run.log_dir / "worker-second.log")
    try:
        yield second
    finally:
        if run.worker is not None:
            run.worker.signal(signal.SIGCONT)
        second.stop()


def expected_state(records: Sequence[Record]) -> dict[str, OrderState]:
    return replay(valid_events(list(records)))


def assert_points_exact(run: Run) -> None:
    ids = event_ids_in_influx(run.settings)
    repeats = [i for i, n in Counter(ids).items() if n > 1]
    assert not repeats, f"{len(repeats)} event_ids have more than one point, e.g. {repeats[:3]}"
    valid = run.valid_ids
    got = set(ids)
    assert got == valid, f"missing {len(valid - got)} (e.g. {sorted(valid - got)[:3]}), extra {len(got - valid)}"
    assert count_points(run.settings) == len(valid)


def assert_dead_letters(run: Run) -> None:
    letters = [dlq.decode(r.value) for r in asyncio.run(read_topic(run.settings, run.settings.topic(ORDER_EVENTS_DLQ)))]
    invalid = {r.value for r in run.records if r.kind == "invalid"}
    got = {letter.value for letter in letters}
    assert got == invalid, f"missing {len(invalid - got)} invalid records, {len(got - invalid)} unexpected"
    for letter in letters:
        assert letter.code and letter.reason.get("problems") is not None, letter
        assert letter.source.topic == run.settings.topic(ORDER_EVENTS)


def assert_state_equals_replay(run: Run) -> None:
    expected = expected_state(run.records)
    changelog = asyncio.run(read_topic(run.settings, changelog_topic(run.settings, "orders")))
    final: dict[str, OrderState] = {}
    for record in sorted(changelog, key=lambda r: (r.partition, r.offset)):
        key = record.key.decode()
        if record.value is None:
            final.pop(key, None)
            continue
        value = decode_value(record.value)
        if isinstance(value, OrderState):
            final[key] = value
    assert set(final) == set(expected), f"orders differ: {len(set(expected) - set(final))} missing"
    mismatched = [o for o in expected if final[o].skus != expected[o].skus]
    assert not mismatched, (
        f"{len(mismatched)} orders differ from the replay, e.g. {mismatched[0]}: "
        f"{final[mismatched[0]].skus} != {expected[mismatched[0]].skus}"
    )
    # The last published snapshot of each order shows the replayed statuses.
    updates = asyncio.run(read_topic(run.settings, run.settings.topic(ORDER_UPDATES)))
    last: dict[str, dict[str, object]] = {}
    highest: dict[str, int] = {}
    for record in sorted(updates, key=lambda r: (r.partition, r.offset)):
        snapshot = orjson.loads(record.value)
        order_id, seq = snapshot["order_id"], snapshot["seq"]
        if run.restarts == 0:
            # Without crashes, each update of an order carries the next seq.
            assert seq == highest.get(order_id, 0) + 1, f"{order_id}: seq {seq} after {highest.get(order_id)}"
        highest[order_id] = max(seq, highest.get(order_id, 0))
        last[order_id] = snapshot
    assert set(last) == set(expected)
    # After crashes a replayed batch may re-send seqs, but the last word has the highest.
    assert all(last[o]["seq"] == highest[o] for o in last)
    for order_id, order in expected.items():
        shown = {sku: s["status"] for sku, s in last[order_id]["skus"].items()}  # type: ignore[union-attr]
        assert shown == {sku: s.status.value for sku, s in order.skus.items()}, order_id


def assert_all(run: Run) -> None:
    assert_points_exact(run)
    assert_dead_letters(run)
    assert_state_equals_replay(run)


Waiter = Callable[[], None]
