"""The packed timeline and its duplicate window (issue #20): a round trip is exact, and the
8-byte hash window never takes a distinct event for a duplicate (a hit is confirmed by id)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.contract import Status
from stream.core import timeline_pack
from stream.core.timeline_pack import TimelineEntry

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._:", min_size=1, max_size=128)
names = st.one_of(st.none(), st.sampled_from(["wms", "hub-001", "310000", "dev-9", "exception after terminal"]))
entries = st.builds(
    TimelineEntry,
    ids,
    st.sampled_from(list(Status)),
    st.integers(946_684_800 * 10**9, 4_102_444_800 * 10**9),
    st.sampled_from(["oms", "wms", "tms", "courier-app"]),
    names,
    names,
    st.booleans(),
    names,
    names,
    st.sampled_from([(), (Status.PICKED,), (Status.PACKED, Status.OUTBOUND_SCAN)]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(entries, max_size=40, unique_by=lambda e: e.event_id), ids)
def test_round_trip_and_exact_membership(timeline: list[TimelineEntry], other: str) -> None:
    packed = timeline_pack.pack(timeline)
    assert timeline_pack.unpack(packed) == tuple(timeline)
    assert timeline_pack.newest_time(packed) == (timeline[-1].time_ns if timeline else None)
    for e in timeline:
        assert timeline_pack.contains(packed, e.event_id)
    assert timeline_pack.contains(packed, other) == (other in {e.event_id for e in timeline})


def test_a_hash_hit_on_another_id_is_not_a_duplicate() -> None:
    """Forge a collision: the window slot of ``ev-1`` holds the hash of ``ev-2``; ``ev-2`` is
    still new (the stored id decides), and ``ev-1`` itself is no longer found by hash."""
    packed = timeline_pack.pack(
        [TimelineEntry("ev-0", Status.PAID, 1, "oms"), TimelineEntry("ev-1", Status.PICKED, 2, "wms")]
    )
    slot = 1 + timeline_pack._HASH_SIZE
    forged = packed[:slot] + timeline_pack.id_hash("ev-2") + packed[slot + timeline_pack._HASH_SIZE :]
    assert not timeline_pack.contains(forged, "ev-2")
    assert timeline_pack.contains(forged, "ev-0")
    assert [e.event_id for e in timeline_pack.unpack(forged)] == ["ev-0", "ev-1"]


def test_strings_are_shared_through_the_name_table() -> None:
    a = timeline_pack.unpack(timeline_pack.pack([TimelineEntry("x", Status.PAID, 1, "o" + "ms", node="hub-" + "7")]))
    b = timeline_pack.unpack(timeline_pack.pack([TimelineEntry("y", Status.PAID, 2, "om" + "s", node="hu" + "b-7")]))
    assert a[0].source is b[0].source and a[0].node is b[0].node
