"""The commit frontier: never past an unacknowledged delivery, never stuck on a hole."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream.kafka.commit_frontier import CommitFrontier


def test_nothing_delivered_commits_nothing() -> None:
    assert CommitFrontier().offset() is None


def test_in_order_acks_commit_one_past_the_last() -> None:
    frontier = CommitFrontier()
    for offset in range(100, 110):
        frontier.delivered(offset)
    for offset in range(100, 105):
        frontier.acknowledged(offset)
    assert frontier.offset() == 105
    for offset in range(105, 110):
        frontier.acknowledged(offset)
    assert frontier.offset() == 110


def test_an_in_flight_message_holds_the_commit_even_when_later_ones_are_acked() -> None:
    # faust-streaming/faust#606: a slow message one past the committed offset
    frontier = CommitFrontier()
    for offset in (2585, 2586, 2587, 2588):
        frontier.delivered(offset)
    for offset in (2586, 2587, 2588):
        frontier.acknowledged(offset)
    assert frontier.offset() == 2585


def test_holes_in_the_log_do_not_block() -> None:
    # transaction markers or compaction: offsets that are never delivered
    frontier = CommitFrontier()
    for offset in (10, 11, 14, 20):
        frontier.delivered(offset)
        frontier.acknowledged(offset)
    assert frontier.offset() == 21


def test_redelivery_after_a_seek_back_does_not_stall() -> None:
    # the restart pattern that made Faust's commit crawl: 0..999 delivered before the
    # seek to the committed offset, then delivered again while the first copies finish
    frontier = CommitFrontier()
    for offset in range(1000):
        frontier.delivered(offset)
    for offset in range(500):
        frontier.acknowledged(offset)
    for offset in range(1000):
        frontier.delivered(offset)
    for offset in range(1000):
        frontier.acknowledged(offset)
    assert frontier.offset() == 1000
    assert frontier.in_flight == 0


def test_ack_of_a_message_delivered_before_a_reset_is_ignored() -> None:
    frontier = CommitFrontier()
    frontier.acknowledged(7)
    assert frontier.offset() is None
    frontier.delivered(8)
    frontier.acknowledged(7)
    assert frontier.offset() == 8


@given(st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=200), st.data())
def test_never_commits_past_an_unacknowledged_delivery(deliveries: list[int], data: st.DataObject) -> None:
    frontier = CommitFrontier()
    for offset in deliveries:
        frontier.delivered(offset)
    acked = data.draw(st.sets(st.sampled_from(deliveries)))
    for offset in acked:
        frontier.acknowledged(offset)
    commit = frontier.offset()
    assert commit is not None
    pending = set(deliveries) - acked
    if pending:
        assert commit == min(pending)
    else:
        assert commit == max(deliveries) + 1
