"""Determinism: batch boundaries, partition interleaving, replay versus live, restoring state.

The traffic here has no records later than the allowed lateness: late data is the one
documented exception to interleaving independence (it lands in whichever evaluation
happens next), checked separately below.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from delays_traffic import HOUR, Delivery, HubOutage, Run, Scenario, consume, generate, partition_of

from stream.core.delays_engine import DelaysEngine
from stream.core.sla import load_sla_rules

RULES = load_sla_rules(Path(__file__).parent / "testdata" / "scenario_sla.yaml")
END = 30 * HOUR


@lru_cache(maxsize=1)
def _traffic() -> list[Delivery]:
    return generate(
        Scenario(
            seed=7,
            orders=1400,
            order_span=20 * HOUR,
            late_uploads=0.0,
            outages=[HubOutage("HUB-NJ", 4 * HOUR, 12 * HOUR)],
        )
    )


@lru_cache(maxsize=1)
def _reference() -> tuple[Run, list[dict[str, Any]]]:
    engine = DelaysEngine(RULES)
    run = consume(engine, _traffic(), chunk=40, ticks=False, until=END)
    return run, [v.to_dict() for v in engine.views()]


def test_the_reference_run_has_something_to_compare() -> None:
    run, _views = _reference()
    assert len(run.incident_ids("delay")) == 1
    assert len(run.transitions) > 1000


def _per_partition(transitions: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for t in transitions:
        out.setdefault(partition_of(str(t["order_id"])), []).append(t)
    return out


def test_batch_boundaries_and_partition_interleaving_do_not_change_anything() -> None:
    reference, views = _reference()
    engine = DelaysEngine(RULES)
    # one record at a time: the partitions interleave differently than in 40-record chunks
    run = consume(engine, _traffic(), chunk=1, ticks=False, until=END)
    assert _per_partition(run.transitions) == _per_partition(reference.transitions)
    assert run.incidents == reference.incidents
    assert [v.to_dict() for v in engine.views()] == views


def test_replay_of_the_log_ends_where_live_processing_ended() -> None:
    reference, views = _reference()
    live = DelaysEngine(RULES)
    run = consume(live, _traffic(), chunk=25, ticks=True, until=END)
    assert [v.to_dict() for v in live.views()] == views
    assert run.incident_ids() == reference.incident_ids()
    assert [
        (r["incident_id"], r["root_cause"], r["state"]) for r in run.incidents if r["type"] != "incident.updated"
    ] == [
        (r["incident_id"], r["root_cause"], r["state"]) for r in reference.incidents if r["type"] != "incident.updated"
    ]


def _halves() -> tuple[list[Delivery], list[Delivery]]:
    traffic = _traffic()
    middle = (len(traffic) // 2) // 40 * 40  # on a chunk boundary, mid-outage
    return traffic[:middle], traffic[middle:]


def _assert_continues_like_reference(first: Run, restored: DelaysEngine, second: list[Delivery]) -> None:
    reference, views = _reference()
    rest = consume(restored, second, chunk=40, ticks=False, until=END)
    assert first.transitions + rest.transitions == reference.transitions
    assert first.incidents + rest.incidents == reference.incidents
    assert [v.to_dict() for v in restored.views()] == views


def test_full_snapshot_restores_an_engine_that_continues_identically() -> None:
    head, tail = _halves()
    engine = DelaysEngine(RULES)
    first = consume(engine, head, chunk=40, ticks=False)
    snapshot = json.loads(json.dumps(engine.to_dict()))
    _assert_continues_like_reference(first, DelaysEngine.from_dict(RULES, snapshot), tail)


def test_incremental_table_entries_restore_an_engine_that_continues_identically() -> None:
    head, tail = _halves()
    engine = DelaysEngine(RULES)
    table: dict[str, Any] = {}
    first = Run()
    for i in range(0, len(head), 400):  # the worker saves every few batches
        consume(engine, head[i : i + 400], chunk=40, ticks=False, run=first)
        for key, value in engine.take_dirty().items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = json.loads(json.dumps(value))
    assert all(len(json.dumps(v)) < 512 * 1024 for v in table.values())
    _assert_continues_like_reference(first, DelaysEngine.from_entries(RULES, table), tail)


def test_late_data_changes_no_sku_state_and_no_incident_identity() -> None:
    traffic = generate(
        Scenario(
            seed=8,
            orders=1400,
            order_span=20 * HOUR,
            late_uploads=0.02,
            outages=[HubOutage("HUB-SX", 4 * HOUR, 12 * HOUR)],
        )
    )
    engines = [DelaysEngine(RULES), DelaysEngine(RULES)]
    runs = [
        consume(engines[0], traffic, chunk=1, ticks=False, until=END),
        consume(engines[1], traffic, chunk=60, ticks=True, until=END),
    ]
    assert [v.to_dict() for v in engines[0].views()] == [v.to_dict() for v in engines[1].views()]
    assert runs[0].incident_ids() == runs[1].incident_ids() and len(runs[0].incident_ids()) == 1
    roots = [{str(r["root_cause"]) for r in run.incidents} for run in runs]
    assert roots[0] == roots[1] == {str({"hub": "HUB-SX"})}
