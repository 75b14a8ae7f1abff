"""A timeline's incidents do not depend on how a batch orders the partitions (issue #19),
and an idle tick stores only what changed. Pure: the delays engine, no broker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner
from stages_scenario import Sent, fast_rules, outage_traffic

from stream.core.delays_engine import DelaysEngine
from stream.core.sla import SlaRules, load_sla_rules

PARTITIONS = 8
NOW = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> SlaRules:
    cwd = os.getcwd()
    os.chdir(REPO)  # fast_rules reads config/sla.yaml
    try:
        return load_sla_rules(fast_rules(tmp_path_factory.mktemp("rules") / "sla.yaml"))
    finally:
        os.chdir(cwd)


def _partition(sent: Sent) -> int:
    every = list(range(PARTITIONS))
    return int(DefaultPartitioner()(sent.key, every, every))


def _interleaved(sent: list[Sent]) -> Iterator[list[Sent]]:
    """Record by record, in receipt order (a clock moving with time)."""
    for s in sent:
        yield [s]


def _partition_first(sent: list[Sent], size: int) -> Iterator[list[Sent]]:
    """Batches of ``size`` that take one partition's records before the next (a backlog
    read with getmany, which drains one partition's fetch first)."""
    flat = sorted(sent, key=_partition)  # stable: each partition keeps its order
    for i in range(0, len(flat), size):
        yield flat[i : i + size]


def _opened(rules: SlaRules, batches: Iterator[list[Sent]], replay: str | None) -> list[dict[str, object]]:
    engine = DelaysEngine(rules, replay)
    engine.expect_partitions(set(range(PARTITIONS)), NOW)
    found = []
    for batch in batches:
        result = engine.process(
            [s.event for s in batch],
            now=NOW,
            received_at=[s.received.timestamp() for s in batch],
            partitions=[_partition(s) for s in batch],
        )
        found += [i.to_record() for i in result.incidents if i.type == "incident.opened"]
    return found


@pytest.mark.parametrize("replay", [None, "last-year"])
def test_partition_order_of_the_batches_changes_no_incident(rules: SlaRules, replay: str | None) -> None:
    sent = outage_traffic(NOW - timedelta(hours=4), minutes=235, outage_after=100)
    assert len({_partition(s) for s in sent}) == PARTITIONS
    reference = _opened(rules, _interleaved(sent), replay)
    assert reference and reference[0]["root_cause"] == {"hub": "HUB-A"}
    for size in (150, 2000, len(sent)):
        assert _opened(rules, _partition_first(sent, size), replay) == reference, size


def test_a_replay_stops_waiting_for_a_partition_without_its_records(rules: SlaRules) -> None:
    engine = DelaysEngine(rules, "last-year")
    engine.expect_partitions({0, 1}, NOW)
    sent = outage_traffic(NOW - timedelta(hours=4), minutes=30, outage_after=100)[:20]
    engine.process([s.event for s in sent], partition=0, now=NOW)
    assert engine.watermark() is None  # partition 1 may still send
    engine.tick(NOW + timedelta(seconds=30))
    assert engine.watermark() is None
    engine.tick(NOW + rules.watermark.idle_after)
    assert engine.watermark() == engine.watermark(0)


def test_an_idle_tick_stores_only_what_changed(rules: SlaRules) -> None:
    engine = DelaysEngine(rules)
    sent = outage_traffic(NOW - timedelta(minutes=30), minutes=30, outage_after=100)
    engine.process([s.event for s in sent], partition=0, now=NOW, received_at=[s.received.timestamp() for s in sent])
    first = engine.take_dirty()
    assert {"core", "detector/delay_incidents", "detector/dq_incidents"} <= first.keys()
    # within the same evaluation slot and with the partition busy: nothing moved
    assert engine.take_dirty() == {}
    engine.tick(NOW)
    assert not [k for k in engine.take_dirty() if k.startswith("detector/")]
    # the entries written so far rebuild the engine
    table = {k: v for k, v in first.items() if v is not None}
    rebuilt = DelaysEngine.from_entries(rules, table)
    assert rebuilt.to_dict() == engine.to_dict()
