"""The war-room views' two phases (stream.core.global_views): per-partition counters kept from
contributions equal a recount, and the owners' sums of the partials equal the counts over
all partitions however the partitions are spread, moved or re-sent."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from stream.core.global_views import (
    Contribution,
    PartialError,
    ViewCounters,
    ViewsOwner,
    merge,
    partial_record,
    reset_record,
)

STATES = ("on_track", "at_risk", "late", "stalled")
CELLS = [(5, f"85{i:02d}", "Zhejiang" if i % 3 else "Jiangsu") for i in range(6)]


def _contribution(rng: random.Random, order: int, partitions: int) -> Contribution:
    cells = ((3, "83aa", "Zhejiang"), rng.choice(CELLS)) if rng.random() < 0.8 else ()
    return Contribution(order % partitions, f"O{order}", rng.choice(STATES), ("Zhejiang", "SF", "WH-1"), cells)


def _recount(
    contributions: dict[str, Contribution],
) -> tuple[dict[tuple[int, str], dict[str, Any]], dict[int, dict[str, int]]]:
    cells: dict[tuple[int, str], dict[str, Any]] = {}
    orders: dict[tuple[int, str], set[str]] = {}
    kpis: dict[int, dict[str, int]] = {}
    kpi_orders: dict[int, set[str]] = {}
    for c in contributions.values():
        kpi = kpis.setdefault(c.partition, Counter())
        kpi["skus"] += 1
        kpi[c.state] += 1
        kpi_orders.setdefault(c.partition, set()).add(c.order_id)
        for _res, cell, _ in c.cells:
            item = cells.setdefault((c.partition, cell), Counter())
            item["skus"] += 1
            item[c.state] += 1
            orders.setdefault((c.partition, cell), set()).add(c.order_id)
    for p, kpi in kpis.items():
        kpi["orders"] = len(kpi_orders[p])
    for key, item in cells.items():
        item["orders"] = len(orders[key])
    return cells, kpis


@pytest.mark.parametrize("seed", range(5))
def test_counters_kept_from_changes_equal_a_recount(seed: int) -> None:
    rng = random.Random(seed)
    counters = ViewCounters()
    truth: dict[str, Contribution] = {}
    for _ in range(3000):
        key = f"O{rng.randrange(200)}|S{rng.randrange(2)}"
        order = int(key[1:].split("|")[0])
        new = None if rng.random() < 0.2 else _contribution(rng, order, 4)
        counters.set(key, new)
        if new is None:
            truth.pop(key, None)
        else:
            truth[key] = new
    cells, kpis = _recount(truth)
    assert set(counters.cells) == set(cells)
    for (p, cell), want in cells.items():
        got = counters.cell_item(p, cell)
        assert got is not None
        assert {k: got[k] for k in ("skus", "orders", "at_risk", "late", "stalled")} == {
            k: want[k] for k in ("skus", "orders", "at_risk", "late", "stalled")
        }
    for p in range(4):
        want = kpis.get(p, Counter())
        got = counters.kpi_counts(p)
        assert {k: got[k] for k in ("skus", "orders", *STATES)} == {k: want[k] for k in ("skus", "orders", *STATES)}
    assert sum(counters.lanes.values()) == len(truth)


def _partials(counters: ViewCounters, partitions: range) -> list[tuple[int, dict[str, Any]]]:
    out = [(p, counters.cell_item(p, cell)) for p, cell in sorted(counters.cells)]
    out += [
        (p, {"type": "kpis", "key": "national", **counters.kpi_counts(p), "at": f"2026-01-01T00:0{p}:00Z"})
        for p in partitions
    ]
    return [(p, item) for p, item in out if item is not None]


def test_owners_sum_partials_however_keys_and_partitions_are_spread() -> None:
    rng = random.Random(7)
    counters = ViewCounters()
    for order in range(300):
        for sku in range(rng.randint(1, 3)):
            counters.set(f"O{order}|S{sku}", _contribution(rng, order, 8))
    partials = _partials(counters, range(8))
    # One owner holding every key, and four owners by key: the same global items.
    single = ViewsOwner({})
    spread = [ViewsOwner({}) for _ in range(4)]
    one: dict[str, Any] = {}
    many: dict[str, Any] = {}
    for source, item in partials:
        one.update(single.apply(partial_record(item, source), 0))
        owner = hash(item["key"]) % 4
        many.update(spread[owner].apply(partial_record(item, source), owner))
    assert one == many
    national = one["national"]
    assert national["skus_in_flight"] == len(counters.contributions)
    assert national["orders_in_flight"] == 300
    assert national["at"] == "2026-01-01T00:07:00Z"
    by_cell: Counter[str] = Counter()
    for c in counters.contributions.values():
        for _, cell, _ in c.cells:
            by_cell[cell] += 1
    assert {k: v["skus"] for k, v in one.items() if v["type"] == "heatmap"} == dict(by_cell)


def test_a_later_partial_replaces_and_a_reset_drops_a_moved_partition() -> None:
    owner = ViewsOwner({})
    cell = {
        "type": "heatmap",
        "key": "85aa",
        "cell": "85aa",
        "res": 5,
        "region": "Zhejiang",
        "skus": 3,
        "orders": 2,
        "at_risk": 1,
        "late": 0,
        "stalled": 0,
    }
    owner.apply(partial_record(cell, 1), 0)
    owner.apply(partial_record({**cell, "skus": 5, "orders": 4}, 2), 0)
    again = owner.apply(partial_record({**cell, "skus": 4}, 1), 0)  # replaces source 1's partial
    assert again["85aa"]["skus"] == 9 and again["85aa"]["orders"] == 6
    # Partition 1 moved: its new worker resets it and sends what it restored.
    dropped = owner.apply(reset_record(1), 0)
    assert dropped["85aa"]["skus"] == 5
    assert owner.apply(partial_record({**cell, "skus": 4}, 1), 0)["85aa"]["skus"] == 9
    # A reset on another partition of the topic leaves this one's keys alone.
    assert owner.apply(reset_record(2), 3) == {}
    # Emptied everywhere: one zero item, and the key is forgotten.
    owner.apply(partial_record({**cell, "skus": 0, "orders": 0, "at_risk": 0}, 1), 0)
    gone = owner.apply(partial_record({**cell, "skus": 0, "orders": 0, "at_risk": 0}, 2), 0)
    assert gone["85aa"]["skus"] == 0 and "85aa" not in owner.store
    assert list(owner.items([0])) == []


def test_kpis_merge_rates_and_replay_range() -> None:
    part = {
        "type": "kpis",
        "key": "replay:r1",
        "skus": 4,
        "orders": 3,
        "on_track": 3,
        "at_risk": 1,
        "late": 0,
        "stalled": 0,
        "eta_slips": 1,
        "at": "2026-01-01T10:00:00Z",
        "replay": "r1",
        "from": "2026-01-01T08:00:00Z",
    }
    item = merge({"0": part, "5": {**part, "on_track": 0, "late": 4, "from": "2026-01-01T07:00:00Z"}})
    assert item["skus_in_flight"] == 8 and item["on_time_rate"] == 0.375 and item["eta_slips"] == 2
    assert item["replay"] == "r1" and item["from"] == "2026-01-01T07:00:00Z"


@pytest.mark.parametrize(
    "value",
    [
        [1, 2],
        {"kind": "total"},
        {"kind": "partial", "source": "3", "item": {}},
        {"kind": "partial", "source": 3, "item": {"type": "heatmap", "key": "85aa", "skus": -1}},
        {"kind": "reset", "source": True},
    ],
)
def test_records_that_are_not_partials_are_refused(value: Any) -> None:
    with pytest.raises(PartialError):
        ViewsOwner({}).apply(value, 0)
