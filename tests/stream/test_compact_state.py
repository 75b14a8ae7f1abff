"""Compact order state (issue #20): exact duplicate detection across redelivery and restart,
the changelog codec (version 2 msgpack, version 1 JSON still read), interned strings."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.contract import OrderEvent, Status
from stream.core.lifecycle import TIMELINE_LIMIT, apply_event
from stream.core.order_state import OrderState, new_order
from stream.core.state_codec import StateFormatError
from stream.sinks.changelog import decode_value, encode_value
from stream.stage_api import StageValue

T0 = datetime(2026, 11, 11, 8, tzinfo=UTC)


def event(status: Status, minute: int, event_id: str, sku: str = "sku-1", **extra: object) -> OrderEvent:
    return OrderEvent(
        event_id=event_id,
        order_id="o-1",
        sku=sku,
        status=status,
        event_time=T0 + timedelta(minutes=minute),
        source="wms",
        **extra,
    )


raw_events = st.lists(
    st.tuples(st.sampled_from(list(Status)), st.integers(min_value=0, max_value=600), st.integers(0, 2)),
    min_size=1,
    max_size=TIMELINE_LIMIT - 1,
)


@settings(max_examples=200, deadline=None)
@given(raw=raw_events, data=st.data())
def test_redelivery_and_replay_after_a_restart_are_exact_duplicates(
    raw: list[tuple[Status, int, int]], data: st.DataObject
) -> None:
    """Every redelivered event (producer retry, or the replay of a batch after a crash when the
    state came back from the changelog) changes nothing; every new event is applied: the dedup
    window compares ids, so no distinct event is ever taken for a duplicate."""
    events = [event(status, minute, f"ev-{i}", sku=f"s{sku}") for i, (status, minute, sku) in enumerate(raw)]
    restart_at = data.draw(st.integers(min_value=0, max_value=len(events)))
    order = new_order("o-1", 0)
    seen: set[str] = set()
    for index, e in enumerate(events):
        if index == restart_at:  # kill -9 and recovery: the state is what the changelog holds
            order = decode_value(encode_value(order))  # type: ignore[assignment]
            assert isinstance(order, OrderState)
            # The batch is replayed from the last commit: everything so far arrives again.
            for again in events[:index]:
                order, change = apply_event(order, again)
                assert change is None, again.event_id
        order, change = apply_event(order, e)
        assert change is not None, e.event_id
        seen.add(e.event_id)
        redelivered = data.draw(st.sampled_from(events[: index + 1]))
        before = order
        order, change = apply_event(order, redelivered)
        assert change is None and order is before
    reference = new_order("o-1", 0)
    for e in events:
        reference, _ = apply_event(reference, e)
    assert order.skus == reference.skus


def test_an_id_that_only_shares_a_prefix_or_hash_bucket_is_not_a_duplicate() -> None:
    order, _ = apply_event(new_order("o-1", 0), event(Status.PAID, 0, "o-1-sku-1-0"))
    for other in ("o-1-sku-1-00", "o-1-sku-1-", "O-1-SKU-1-0"):
        order, change = apply_event(order, event(Status.PICKED, 1, other))
        assert change is not None


def test_codec_round_trip_and_interned_strings() -> None:
    order = new_order("o-1", 3)
    for i, status in enumerate((Status.PAID, Status.PICKED, Status.PACKED)):
        order, _ = apply_event(
            order,
            event(
                status,
                i,
                f"e{i}",
                node="".join(["wh-", "sh-1"]),
                region="310000",
                warehouse="wh-sh-1",
                lat=31.2,
                lon=121.4,
                device_id="dev-9",
            ),
        )
    order = order.with_extension("sla", {"due": 12, "tiers": [1, 2]})
    raw = encode_value(order)
    assert raw[:1] != b"{"  # version 2: msgpack
    back = decode_value(raw)
    assert back == order
    assert isinstance(back, OrderState)
    entry = back.skus["sku-1"].timeline[-1]
    assert entry.node is sys.intern("wh-sh-1") and entry.device is sys.intern("dev-9")
    assert back.skus["sku-1"].facts.region is sys.intern("310000")
    assert dict(back.skus["sku-1"].stage_times) == {
        "paid": order.skus["sku-1"].stage_times["paid"],
        "picked": order.skus["sku-1"].stage_times["picked"],
        "packed": order.skus["sku-1"].stage_times["packed"],
    }
    stage = StageValue("delays", "k", 3, {"a": [1, 2.5, None, "x"]})
    assert decode_value(encode_value(stage)) == stage


def test_a_version_1_json_changelog_is_still_read() -> None:
    v1 = {
        "v": 1,
        "order_id": "o-1",
        "partition": 2,
        "seq": 4,
        "last_event_ns": 1_700_000_060_000_000_000,
        "skus": [
            {
                "sku": "sku-1",
                "status": "picked",
                "rank": 2,
                "status_time_ns": 1_700_000_060_000_000_000,
                "stage_times": {"paid": 1_700_000_000_000_000_000, "picked": 1_700_000_060_000_000_000},
                "facts": {"qty": 2, "region": "310000"},
                "timeline": [
                    ["a", "paid", 1_700_000_000_000_000_000, "oms", None, "310000", False, None],
                    ["b", "picked", 1_700_000_060_000_000_000, "wms", "wh-1", None, False, None, "dev-1", []],
                ],
            }
        ],
        "ext": {"sla": {"x": 1}},
    }
    order = decode_value(orjson.dumps(v1))
    assert isinstance(order, OrderState)
    sku = order.skus["sku-1"]
    assert (order.seq, sku.status, sku.facts.qty, [e.event_id for e in sku.timeline]) == (
        4,
        Status.PICKED,
        2,
        ["a", "b"],
    )
    assert list(sku.stage_times) == ["paid", "picked"]
    assert decode_value(encode_value(order)) == order
    stage = decode_value(orjson.dumps({"kind": "stage", "stage": "s", "key": "k", "partition": 1, "data": [1]}))
    assert stage == StageValue("s", "k", 1, [1])


@pytest.mark.parametrize("raw", [b"\x93\xa2o9\x01\x02", b"not a value", b'{"v": 7}', b"[1, 2]", b"\xc1"])
def test_unknown_table_values_are_refused_with_a_reason(raw: bytes) -> None:
    with pytest.raises(StateFormatError):
        decode_value(raw)
