"""Per-connection outboxes, the war-room state with resume history, and alert folding."""

from __future__ import annotations

import asyncio

from dashboard.gateway.alert_board import fold_alert_record
from dashboard.gateway.messages import TrackDelta, WarroomUpdate
from dashboard.gateway.send_queue import PutResult, SendQueue
from dashboard.gateway.warroom_state import WarroomState, item_of_warroom_record


def update(seq: int, key: str) -> WarroomUpdate:
    return WarroomUpdate("ep", seq, "heatmap", key, {"n": seq})


def test_the_outbox_coalesces_per_key_keeps_seq_order_and_overflows_at_its_bound() -> None:
    async def scenario() -> None:
        box = SendQueue(max_keys=2)
        assert box.put(update(1, "a"), now=0.0) is PutResult.QUEUED
        assert box.put(update(2, "b"), now=0.0) is PutResult.QUEUED
        assert box.put(update(3, "a"), now=1.0) is PutResult.COALESCED  # a moves behind b
        assert box.put(update(4, "c"), now=1.0) is PutResult.OVERFLOW
        assert box.oldest_since() == 0.0
        got = [await box.get(), await box.get()]
        assert [(m.seq, m.key) for m in got] == [(2, ("heatmap", "b")), (3, ("heatmap", "a"))]
        assert len(box) == 0 and box.oldest_since() is None

    asyncio.run(scenario())


def test_a_waiting_writer_wakes_when_a_message_arrives() -> None:
    async def scenario() -> None:
        box = SendQueue(max_keys=4)
        waiter = asyncio.create_task(box.get())
        await asyncio.sleep(0)  # one loop turn so the task starts (a yield, not a wait)
        assert not waiter.done()
        box.put(TrackDelta("o", 1, 2, {}, {}), now=0.0)
        message = await asyncio.wait_for(waiter, 1)
        assert message.seq == 2

    asyncio.run(scenario())


def test_warroom_state_replays_what_a_client_missed_or_asks_for_a_snapshot() -> None:
    state = WarroomState(history=3, items_per_channel=10, epoch="ep1")
    for i in range(1, 6):
        state.apply("kpis", "orders", {"count": i})
    assert state.seq == 5 and state.items("kpis") == [{"count": 5}]
    replay = state.since("ep1", 3)
    assert replay is not None and [u.seq for u in replay] == [4, 5]
    assert state.since("ep1", 5) == []
    assert state.since("ep1", 1) is None  # history holds 3..5 only
    assert state.since("other-epoch", 4) is None
    assert state.since("ep1", 9) is None
    state.apply("kpis", "orders", None)
    assert state.items("kpis") == [] and state.snapshot().payload()["channels"] == {"kpis": {}}


def test_each_channel_keeps_at_most_its_bound_of_items() -> None:
    state = WarroomState(history=10, items_per_channel=2)
    for cell in ("c1", "c2", "c3"):
        state.apply("heatmap", cell, {"cell": cell})
    assert [i["cell"] for i in state.items("heatmap")] == ["c2", "c3"]


def test_warroom_records_name_their_channel_and_key() -> None:
    assert item_of_warroom_record(b"k", {"type": "heatmap", "cell": "8a2a1072b59ffff"}) == (
        "heatmap",
        "8a2a1072b59ffff",
    )
    assert item_of_warroom_record(b"total", {"type": "kpis"}) == ("kpis", "total")
    assert item_of_warroom_record(None, {"type": "kpis"}) == ("kpis", "kpis")


def test_alert_records_fold_into_one_summary_per_alert_and_per_silence() -> None:
    items: dict[tuple[str, str], dict] = {}  # type: ignore[type-arg]

    def fold(record: dict) -> None:  # type: ignore[type-arg]
        channel, key, item = fold_alert_record(record, lambda c, k: items.get((c, k)))
        items[(channel, key)] = item

    fold({"alert_id": "a1", "event": "fired", "at": "t1", "tier": "P2", "labels": {"region": "east"}})
    fold({"alert_id": "a1", "event": "notified", "at": "t2", "receiver": "slack"})
    fold({"alert_id": "a1", "event": "acked", "at": "t3", "by": "alice"})
    fold({"alert_id": "", "silence_id": "sil-1", "event": "silence_created", "at": "t4", "by": "bob"})
    alert = items[("alert", "a1")]
    assert alert["status"] == "acked" and alert["acked_by"] == "alice" and alert["tier"] == "P2"
    assert alert["first_at"] == "t1" and alert["last_event"] == "acked"
    assert items[("silence", "sil-1")]["active"] is True
