"""generate_dataset: exact shares of invalid, duplicate and reordered records."""

from __future__ import annotations

from collections import Counter

import pytest

from orderradar.simulator.dataset import EXPECTED_REJECTION, InvalidKind, generate_dataset
from stream.contract import OrderEvent, Rejection, validate_record


def _audit(ds):
    """Replay the records through the contract like the stream would."""
    seen: set[str] = set()
    accepted: list[OrderEvent] = []
    rejected: dict[int, Rejection] = {}
    dup_indexes, late_indexes = set(), set()
    latest = None
    for i, (key, value) in enumerate(ds.records):
        result = validate_record(key, value, ds.now)
        if isinstance(result, Rejection):
            rejected[i] = result
            continue
        if result.event_id in seen:
            dup_indexes.add(i)
            continue
        seen.add(result.event_id)
        accepted.append(result)
        if latest is not None and result.event_time < latest:
            late_indexes.add(i)
        latest = result.event_time if latest is None else max(latest, result.event_time)
    return seen, accepted, rejected, dup_indexes, late_indexes


@pytest.mark.parametrize(
    ("n", "invalid_rate", "dup_rate", "reorder_rate"),
    [(4000, 0.1, 0.05, 0.05), (1000, 0.0, 0.0, 0.0), (1234, 0.013, 0.2, 0.1), (10, 0.5, 0.1, 0.0)],
)
def test_shares_are_exact_and_the_oracle_matches_the_contract(n, invalid_rate, dup_rate, reorder_rate, check_legal):
    ds = generate_dataset(7, n, invalid_rate, dup_rate, reorder_rate)
    n_invalid, n_dup = round(n * invalid_rate), round(n * dup_rate)
    n_valid = n - n_invalid - n_dup
    assert len(ds.records) == n
    assert (len(ds.invalid), len(ds.duplicates), len(ds.valid_event_ids)) == (n_invalid, n_dup, n_valid)
    assert len(ds.reordered) == round(n_valid * reorder_rate)

    seen, accepted, rejected, dup_indexes, late_indexes = _audit(ds)
    assert seen == ds.valid_event_ids
    assert set(rejected) == set(ds.invalid)
    assert all(rejected[i].code is ds.expected_rejection(i) for i in rejected)
    assert dup_indexes == ds.duplicates
    assert late_indexes == ds.reordered
    assert check_legal(accepted) == []


def test_every_kind_of_invalid_record_is_present_in_equal_measure():
    ds = generate_dataset(3, 2000, invalid_rate=0.1)
    kinds = Counter(ds.invalid.values())
    assert set(kinds) == set(InvalidKind) and set(kinds.values()) == {20}
    assert set(EXPECTED_REJECTION) == set(InvalidKind)
    keyless = [i for i, k in ds.invalid.items() if k is InvalidKind.KEYLESS]
    assert all(ds.records[i][0] is None for i in keyless)
    oversize = [i for i, k in ds.invalid.items() if k is InvalidKind.OVERSIZE]
    assert all(len(ds.records[i][1]) > 8 * 1024 for i in oversize)


def test_duplicates_are_the_same_bytes_resent_later():
    ds = generate_dataset(4, 1000, dup_rate=0.1)
    first_seen: dict[bytes, int] = {}
    for i, (_, value) in enumerate(ds.records):
        if i in ds.duplicates:
            assert value in first_seen and first_seen[value] < i
        else:
            first_seen.setdefault(value, i)


def test_reordered_records_arrive_within_a_minute_of_the_records_they_follow():
    ds = generate_dataset(5, 3000, reorder_rate=0.1)
    _, accepted, _, _, _ = _audit(ds)
    latest = accepted[0].event_time
    for event in accepted:
        assert (latest - event.event_time).total_seconds() <= 60
        latest = max(latest, event.event_time)


def test_valid_records_are_whole_order_lives():
    ds = generate_dataset(6, 3000)
    _, accepted, _, _, _ = _audit(ds)
    orders = {e.order_id for e in accepted}
    delivered_or_closed = {e.order_id for e in accepted if e.status.value in ("delivered", "cancelled")}
    assert len(delivered_or_closed) >= len(orders) - 3


def test_same_arguments_same_records_and_bad_arguments_refused():
    assert generate_dataset(8, 500, 0.1, 0.1, 0.1).records == generate_dataset(8, 500, 0.1, 0.1, 0.1).records
    assert generate_dataset(8, 500).records != generate_dataset(9, 500).records
    with pytest.raises(ValueError, match="invalid_rate"):
        generate_dataset(1, 100, invalid_rate=1.5)
    with pytest.raises(ValueError, match="no valid records"):
        generate_dataset(1, 100, invalid_rate=0.6, dup_rate=0.5)
    with pytest.raises(ValueError, match="reordered"):
        generate_dataset(1, 200, reorder_rate=1.0)
