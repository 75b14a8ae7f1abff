"""The partition cursor: process each offset once, in order, from the committed offset."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream.partition_cursor import PartitionCursors, admit


def test_in_order_records_are_all_taken() -> None:
    admission = admit(100, [100, 101, 102])
    assert admission.take == (0, 1, 2)
    assert admission.next_offset == 103
    assert (admission.behind, admission.ahead, admission.first_ahead) == (0, 0, None)


def test_re_deliveries_below_the_cursor_are_skipped() -> None:
    admission = admit(100, [98, 99, 100, 99, 101])
    assert admission.take == (2, 4)
    assert admission.next_offset == 102
    assert admission.behind == 3


def test_a_record_lost_before_the_agent_stops_the_partition_there() -> None:
    # The race seen in the rebalance-storm test: the seek to committed offset 896 was
    # followed by 897 onwards; 896 was lost in Faust's queue clear.
    admission = admit(896, [897, 898, 899])
    assert admission.take == ()
    assert admission.next_offset == 896
    assert (admission.ahead, admission.first_ahead) == (3, 897)


def test_a_re_read_after_stale_records_is_taken_in_order() -> None:
    admission = admit(896, [900, 901, 896, 897, 898])
    assert admission.take == (2, 3, 4)
    assert admission.next_offset == 899
    assert (admission.ahead, admission.first_ahead) == (2, 900)


def test_a_stale_copy_that_a_later_copy_covers_counts_as_behind() -> None:
    admission = admit(5, [6, 5, 6, 7])
    assert admission.take == (1, 2, 3)
    assert admission.next_offset == 8
    assert (admission.behind, admission.ahead) == (1, 0)


@given(st.integers(min_value=0, max_value=50), st.lists(st.integers(min_value=0, max_value=80), max_size=120))
def test_taken_offsets_are_the_contiguous_run_from_the_cursor(cursor: int, offsets: list[int]) -> None:
    admission = admit(cursor, offsets)
    taken = [offsets[i] for i in admission.take]
    assert taken == list(range(cursor, admission.next_offset))  # each once, in order, no gap
    assert list(admission.take) == sorted(admission.take)  # in delivery order
    assert admission.behind + admission.ahead + len(taken) == len(offsets)
    # Something the batch could not use beyond the cursor is always reported for a re-read.
    assert admission.ahead == sum(1 for o in offsets if o >= admission.next_offset)


def test_cursors_start_at_the_committed_offset_and_keep_a_lead() -> None:
    cursors: PartitionCursors[str] = PartitionCursors()
    assert cursors.position("p0") == (None, 0)
    cursors.forget(["p0"])
    cursors.start("p0", 100)
    offset, epoch = cursors.position("p0")
    assert offset == 100
    cursors.advance("p0", 150, epoch)
    cursors.start("p0", 120)  # Faust seeks back to a commit behind the processed prefix
    assert cursors.committable("p0") == 150


def test_a_batch_admitted_before_a_reassignment_does_not_move_the_cursor() -> None:
    cursors: PartitionCursors[str] = PartitionCursors()
    cursors.forget(["p0"])
    cursors.start("p0", 10)
    _, epoch = cursors.position("p0")
    cursors.forget(["p0"])  # revoked and assigned again while the batch ran
    cursors.advance("p0", 20, epoch)
    assert cursors.committable("p0") is None
    cursors.start("p0", 10)
    cursors.advance("p0", 20, epoch)
    assert cursors.committable("p0") == 10


def test_a_hole_in_the_log_moves_the_cursor_forward_only() -> None:
    cursors: PartitionCursors[str] = PartitionCursors()
    cursors.start("p0", 10)
    _, epoch = cursors.position("p0")
    cursors.jump("p0", 14, epoch)
    cursors.jump("p0", 12, epoch)
    assert cursors.committable("p0") == 14


def test_a_hole_found_before_a_reassignment_does_not_move_the_new_cursor() -> None:
    # The probe answered about the old cursor; meanwhile the partition went to another
    # worker and came back: jumping now could commit past records it never processed.
    cursors: PartitionCursors[str] = PartitionCursors()
    cursors.start("p0", 10)
    _, epoch = cursors.position("p0")
    cursors.forget(["p0"])
    cursors.start("p0", 5)
    cursors.jump("p0", 20, epoch)
    assert cursors.committable("p0") == 5
