"""The customer projection, the order cache with its delta buffer, and message merging."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import orjson
import pytest

from dashboard.gateway.messages import TrackDelta, TrackSnapshot, apply_delta
from dashboard.gateway.order_cache import OrderCache
from dashboard.gateway.order_snapshot import OrderSnapshot
from dashboard.gateway.projection import customer_view
from gateway.harness import SkuPlan, order_snapshot

UPDATED = datetime(2026, 11, 11, 9, 0, tzinfo=UTC)


def parse(raw: dict) -> OrderSnapshot:  # type: ignore[type-arg]
    return OrderSnapshot.model_validate(raw)


def view_of(statuses: list[str], **plan: object) -> dict:  # type: ignore[type-arg]
    raw = order_snapshot("o-1", 1, {"sku-1": SkuPlan(statuses, **plan)}, UPDATED)  # type: ignore[arg-type]
    return customer_view(parse(raw))


def test_the_customer_view_carries_no_internal_names_ids_or_notes() -> None:
    view = view_of(["paid", "picked", "packed", "outbound_scan", "linehaul"])
    text = orjson.dumps(view).decode()
    for secret in ("HUB-SECRET-7", "PDA-0042", "staff", "rude", "late_scan", "ops-team-3", "wms", "event_id", "node"):
        assert secret not in text
    sku = view["skus"]["sku-1"]
    assert view["status"] == "linehaul" and sku["status"] == "linehaul"
    assert [e["status"] for e in sku["timeline"]] == ["paid", "picked", "packed", "outbound_scan", "linehaul"]
    assert set(sku) == {"status", "since", "timeline", "position", "ordered_at"}
    assert sku["ordered_at"] == sku["timeline"][0]["time"]


def test_positions_are_coarse_in_transit_precise_out_for_delivery_and_gone_once_delivered() -> None:
    in_transit = view_of(["paid", "linehaul"])["skus"]["sku-1"]["position"]
    assert in_transit == {"lat": 31.23, "lon": 121.48, "precise": False}
    last_mile = view_of(["paid", "linehaul", "out_for_delivery"])["skus"]["sku-1"]["position"]
    assert last_mile == {"lat": 31.23457, "lon": 121.47543, "precise": True}
    for final in ("delivered", "return_requested", "cancelled"):
        assert view_of(["paid", "out_for_delivery", final])["skus"]["sku-1"]["position"] is None


def test_repeated_scans_collapse_and_only_safe_reason_tokens_pass() -> None:
    raw = order_snapshot("o-1", 1, {"sku-1": SkuPlan(["paid", "linehaul", "linehaul", "hub_arrival", "exception"])})
    raw["skus"]["sku-1"]["reason"] = "weather"
    sku = customer_view(parse(raw))["skus"]["sku-1"]
    assert [e["status"] for e in sku["timeline"]] == ["paid", "linehaul", "hub_arrival", "exception"]
    assert sku["reason"] == "weather"
    raw["skus"]["sku-1"]["reason"] = "Driver said: customer is rude"
    assert customer_view(parse(raw))["skus"]["sku-1"]["reason"] == "other"


def test_flat_lat_lon_and_a_nested_order_are_read_too() -> None:
    raw = {
        "seq": 3,
        "order": {
            "order_id": "o-9",
            "rollup": "linehaul",
            "skus": {"a": {"status": "linehaul", "lat": 30.5, "lon": 114.3}},
        },
    }
    snapshot = parse(raw)
    assert snapshot.order_id == "o-9" and snapshot.seq == 3
    assert customer_view(snapshot)["skus"]["a"]["position"] == {"lat": 30.5, "lon": 114.3, "precise": False}


def snapshot_at(seq: int, statuses: list[str], sku2: list[str] | None = None) -> tuple[OrderSnapshot, bytes]:
    skus = {"sku-1": SkuPlan(statuses)}
    if sku2:
        skus["sku-2"] = SkuPlan(sku2)
    raw = order_snapshot("o-1", seq, skus, UPDATED)
    return parse(raw), orjson.dumps(raw)


def test_the_cache_ignores_stale_seqs_and_chains_deltas() -> None:
    cache = OrderCache(max_orders=10, deltas_per_order=4)
    first = cache.apply(*snapshot_at(1, ["paid"]))
    assert first is not None and first.delta is None and first.snapshot.seq == 1
    second = cache.apply(*snapshot_at(2, ["paid", "picked"], ["paid"]))
    assert second is not None and second.delta is not None
    assert (second.delta.from_seq, second.delta.seq) == (1, 2)
    assert set(second.delta.skus) == {"sku-1", "sku-2"}
    assert cache.apply(*snapshot_at(2, ["paid"])) is None  # duplicate
    assert cache.apply(*snapshot_at(1, ["paid"])) is None  # older
    third = cache.apply(*snapshot_at(3, ["paid", "picked"], ["paid", "picked"]))
    assert third is not None and third.delta is not None and set(third.delta.skus) == {"sku-2"}


def test_deltas_since_replays_from_any_buffered_seq_or_says_a_snapshot_is_needed() -> None:
    cache = OrderCache(max_orders=10, deltas_per_order=3)
    for seq in range(1, 7):
        cache.apply(*snapshot_at(seq, ["paid"] + ["linehaul"] * seq))
    assert cache.deltas_since("o-1", 6) == []
    replay = cache.deltas_since("o-1", 3)
    assert replay is not None and [(d.from_seq, d.seq) for d in replay] == [(3, 4), (4, 5), (5, 6)]
    assert cache.deltas_since("o-1", 2) is None  # fell out of the 3-delta buffer
    assert cache.deltas_since("o-unknown", 0) is None


def test_the_cache_evicts_the_least_recently_touched_order() -> None:
    cache = OrderCache(max_orders=2, deltas_per_order=2)
    for order_id in ("a", "b"):
        cache.apply(parse(order_snapshot(order_id, 1, {"s": SkuPlan(["paid"])})), b"{}")
    assert cache.get("a") is not None  # touching "a" makes "b" the oldest
    cache.apply(parse(order_snapshot("c", 1, {"s": SkuPlan(["paid"])})), b"{}")
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 2


def test_merged_deltas_and_snapshots_give_the_same_state_as_applying_each_in_turn() -> None:
    rng = random.Random(7)
    statuses = ["paid", "picked", "packed", "outbound_scan", "linehaul", "hub_arrival", "out_for_delivery"]
    cache = OrderCache(max_orders=10, deltas_per_order=100)
    plans: dict[str, list[str]] = {f"sku-{i}": ["paid"] for i in range(4)}
    first = cache.apply(parse(order_snapshot("o-1", 1, {k: SkuPlan(v) for k, v in plans.items()})), b"{}")
    assert first is not None
    state = first.snapshot.view
    merged_delta: TrackDelta | None = None
    merged_snapshot: TrackSnapshot = first.snapshot
    for seq in range(2, 40):
        sku = rng.choice(sorted(plans))
        plans[sku] = plans[sku] + [rng.choice(statuses)]
        current = {k: SkuPlan(v) for k, v in plans.items() if not (seq % 9 == 0 and k == "sku-3")}
        change = cache.apply(parse(order_snapshot("o-1", seq, current, UPDATED)), b"{}")
        assert change is not None and change.delta is not None
        state = apply_delta(state, change.delta)
        merged_delta = change.delta if merged_delta is None else merged_delta.merged_with(change.delta)  # type: ignore[assignment]
        merged_snapshot = merged_snapshot.merged_with(change.delta)  # type: ignore[assignment]
        assert state == change.snapshot.view
    assert merged_delta is not None and (merged_delta.from_seq, merged_delta.seq) == (1, 39)
    assert apply_delta(first.snapshot.view, merged_delta) == state == merged_snapshot.view
    assert merged_snapshot.seq == 39


def test_merging_deltas_that_do_not_chain_is_a_programming_error() -> None:
    a = TrackDelta("o", 1, 2, {}, {})
    with pytest.raises(AssertionError):
        a.merged_with(TrackDelta("o", 5, 6, {}, {}))


def test_the_workers_own_snapshots_project_to_a_private_customer_view() -> None:
    """Contract with the worker: its ``order-updates`` value (stream.core.rollup) parses here and
    leaks nothing internal into the customer view."""
    from stream.contract import OrderEvent
    from stream.core.lifecycle import replay
    from stream.core.rollup import order_snapshot as worker_snapshot

    def event(i: int, sku: str, status: str, **extra: object) -> OrderEvent:
        return OrderEvent.model_validate(
            {
                "event_id": f"e{i}",
                "order_id": "o-1",
                "sku": sku,
                "status": status,
                "source": "tms",
                "event_time": f"2026-11-11T0{i}:00:00+00:00",
                "warehouse": "WH-SECRET",
                "node": "HUB-SECRET-7",
                "device_id": "PDA-0042",
                "courier_id": "C-77",
                "carrier": "SF",
                "region": "CN-31",
                "dest_lat": 31.2,
                "dest_lon": 121.4,
                **extra,
            }
        )

    events = [
        event(1, "a", "paid"),
        event(2, "a", "packed"),
        event(3, "a", "linehaul", lat=31.123456, lon=121.654321),
        event(4, "a", "out_for_delivery", lat=31.234567, lon=121.765432),
        event(5, "b", "paid"),
    ]
    orders = replay(events)
    raw = orjson.dumps(worker_snapshot(orders["o-1"]))
    view = customer_view(OrderSnapshot.model_validate_json(raw))
    text = orjson.dumps(view).decode()
    for internal in ("SECRET", "PDA-0042", "C-77", "CN-31", "tms", "121.4,", "destination", "e1"):
        assert internal not in text
    a = view["skus"]["a"]
    assert a["status"] == "out_for_delivery" and a["since"].startswith("2026-11-11T04:00")
    # The fix's event time goes along: the page shows the position's age.
    assert a["position"] == {"lat": 31.23457, "lon": 121.76543, "precise": True, "time": "2026-11-11T04:00:00+00:00"}
    assert a["ordered_at"] == "2026-11-11T01:00:00+00:00"
    assert [e["status"] for e in a["timeline"]] == ["paid", "packed", "linehaul", "out_for_delivery"]
    assert view["skus"]["b"]["status"] == "paid" and view["skus"]["b"]["position"] is None
