"""Ready-made Kafka records for stream tests and benchmarks, with an exact mix of faults.

:func:`generate_dataset` returns the records (key, value) of simulated orders with
exactly the requested numbers of invalid records (every rejection the contract knows),
duplicates (the same bytes re-sent) and records reordered within a minute of event time,
plus what an oracle needs: the valid event ids, which records are which, and the
receiver clock (``now``) to validate against.

Counts: with ``n`` records, ``round(n * invalid_rate)`` are invalid, ``round(n * dup_rate)``
are duplicates, the rest are valid originals, of which ``round(valid * reorder_rate)``
arrive after a record with a later event time (at most ``reorder_window_s`` later).
Valid records are the whole lives of consecutive orders (the last one cut short), and
invalid records are built from other orders, so every valid SKU's events are an
unbroken prefix of its life and obey the legal transitions.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import orjson

from stream.contract import MAX_EVENT_BYTES, OrderEvent, RejectCode

from .durations import CHINA_TZ, DAY_S, HOUR_S
from .generator import TrafficGenerator, TrafficProfile
from .rates import events_per_order

Record = tuple[bytes | None, bytes]

DATASET_START = datetime(2026, 11, 11, tzinfo=CHINA_TZ)
#: Orders are placed within this much simulated time; their lives run on for days.
PLACEMENT_WINDOW_S = 2 * HOUR_S
#: How far (in records) after its original a duplicate is re-sent, at most.
DUP_MAX_DISTANCE = 200
#: How many later records a reordered record jumps over, at most.
REORDER_MAX_JUMP = 20


class InvalidKind(StrEnum):
    SCHEMA = "schema"
    UNKNOWN_FIELD = "unknown_field"
    BAD_COORDINATES = "bad_coordinates"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    KEYLESS = "keyless"
    KEY_MISMATCH = "key_mismatch"
    OVERSIZE = "oversize"
    FUTURE_TIME = "future_time"


#: What ``stream.contract.validate_record`` answers for each kind.
EXPECTED_REJECTION: dict[InvalidKind, RejectCode] = {
    InvalidKind.SCHEMA: RejectCode.SCHEMA,
    InvalidKind.UNKNOWN_FIELD: RejectCode.SCHEMA,
    InvalidKind.BAD_COORDINATES: RejectCode.SCHEMA,
    InvalidKind.NOT_UTF8: RejectCode.NOT_UTF8,
    InvalidKind.NOT_JSON: RejectCode.NOT_JSON,
    InvalidKind.NOT_OBJECT: RejectCode.NOT_OBJECT,
    InvalidKind.KEYLESS: RejectCode.MISSING_KEY,
    InvalidKind.KEY_MISMATCH: RejectCode.KEY_MISMATCH,
    InvalidKind.OVERSIZE: RejectCode.OVERSIZE,
    InvalidKind.FUTURE_TIME: RejectCode.FUTURE_TIME,
}
_KINDS = tuple(InvalidKind)


@dataclass(frozen=True)
class Dataset:
    """Records in delivery order, and the answers a test needs about them."""

    records: list[Record]
    #: Event ids of every valid record (each appears once here, maybe twice on the wire).
    valid_event_ids: frozenset[str]
    #: Record index -> why it is invalid.
    invalid: dict[int, InvalidKind]
    #: Indexes of records that re-send an earlier record's bytes.
    duplicates: frozenset[int]
    #: Indexes of valid originals delivered after a valid original with a later event time.
    reordered: frozenset[int]
    #: The receiver clock to validate against: every valid record is accepted at it.
    now: datetime

    def expected_rejection(self, index: int) -> RejectCode | None:
        kind = self.invalid.get(index)
        return EXPECTED_REJECTION[kind] if kind is not None else None


def _count(n: int, rate: float, what: str) -> int:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{what} must be between 0 and 1, got {rate}")
    return round(n * rate)


def _order_number(order_id: str) -> int:
    return int(order_id.rsplit("-", 1)[1])


def _events(seed: int, n_valid: int, n_base: int) -> tuple[list[OrderEvent], list[OrderEvent]]:
    """``n_valid`` events of whole orders (all but the last order complete, that one a
    time-ordered prefix) and ``n_base`` events of further orders to corrupt."""
    per_order = events_per_order()
    margin = 1.15
    while True:
        total = math.ceil((n_valid + n_base) / per_order * margin) + 3
        profile = TrafficProfile(orders_per_day=total * DAY_S / PLACEMENT_WINDOW_S, diurnal=False, max_orders=total)
        by_order: dict[int, list[OrderEvent]] = {}
        for emission in TrafficGenerator(seed, DATASET_START, profile).run_until(None):
            by_order.setdefault(_order_number(emission.event.order_id), []).append(emission.event)
        valid: list[OrderEvent] = []
        base: list[OrderEvent] = []
        for number in sorted(by_order):
            events = by_order[number]
            if len(valid) < n_valid:
                valid.extend(events[: n_valid - len(valid)])
            elif len(base) < n_base:
                base.extend(events[: n_base - len(base)])
        if len(valid) == n_valid and len(base) == n_base:
            return valid, base
        margin *= 1.5


def _corrupt(kind: InvalidKind, event: OrderEvent, variant: int, now: datetime) -> Record:
    key = event.order_id.encode()
    obj = event.model_dump(mode="json", exclude_none=True)
    if kind is InvalidKind.SCHEMA:
        variants: list[tuple[str, object]] = [
            ("status", "teleported"),
            ("qty", 0),
            ("event_time", "yesterday"),
            ("event_id", ""),
            ("event_time", "2026-11-11T10:00:00"),
        ]
        field, value = variants[variant % len(variants)]
        obj[field] = value
        return key, orjson.dumps(obj)
    if kind is InvalidKind.UNKNOWN_FIELD:
        obj["temperature_c"] = 4.5
        return key, orjson.dumps(obj)
    if kind is InvalidKind.BAD_COORDINATES:
        coords: list[dict[str, object]] = [
            {"lat": 123.4, "lon": 120.1},
            {"lat": 0, "lon": 0},
            {"lat": 30.2, "lon": None},
            {"lat": 30.2, "lon": 200.0},
        ]
        obj.update(coords[variant % len(coords)])
        return key, orjson.dumps(obj)
    if kind is InvalidKind.NOT_UTF8:
        # A source that encodes text as GBK/Latin-1 instead of UTF-8.
        raw = event.to_json().replace(b'"source":"', b'"source":"\xc9\xcf\xba\xa3-', 1)
        return key, raw
    if kind is InvalidKind.NOT_JSON:
        return key, event.to_json()[: -(7 + variant % 20)]
    if kind is InvalidKind.NOT_OBJECT:
        return key, orjson.dumps([obj])
    if kind is InvalidKind.KEYLESS:
        return None, event.to_json()
    if kind is InvalidKind.KEY_MISMATCH:
        return b"X" + key, event.to_json()
    if kind is InvalidKind.OVERSIZE:
        obj["attributes"] = {"photo_base64": "A" * (MAX_EVENT_BYTES + 100)}
        return key, orjson.dumps(obj)
    obj["event_time"] = (now + timedelta(days=2, minutes=variant % 600)).isoformat()
    return key, orjson.dumps(obj)


def _reorder(events: list[OrderEvent], k: int, window_s: float, rng: random.Random) -> list[float]:
    """Sort keys that deliver exactly ``k`` records late: each jumps over 1 to
    ``REORDER_MAX_JUMP`` following records, at least one of them strictly later in event
    time and none more than ``window_s`` later. Jumps never overlap, so nothing else
    arrives out of order."""
    keys = [float(i) for i in range(len(events))]
    if k == 0:
        return keys
    times = [e.event_time.timestamp() for e in events]
    starts = list(range(len(events) - 1))
    rng.shuffle(starts)
    used = [False] * len(events)
    done = 0
    for i in starts:
        if done == k:
            break
        if used[i]:
            continue
        j = i + 1
        while j < len(events) and times[j] == times[i]:
            j += 1  # ties do not count as out of order
        if j >= len(events) or times[j] - times[i] > window_s:
            continue
        last = j
        while last + 1 < len(events) and last + 1 - i <= REORDER_MAX_JUMP and times[last + 1] - times[i] <= window_s:
            last += 1
        end = rng.randint(j, last)
        if any(used[i : end + 1]):
            continue
        for x in range(i, end + 1):
            used[x] = True
        keys[i] = end + 0.5
        done += 1
    if done < k:
        raise ValueError(f"only {done} of {k} records can be reordered within {window_s:g} s; lower reorder_rate")
    return keys


def generate_dataset(
    seed: int,
    n_events: int,
    invalid_rate: float = 0.0,
    dup_rate: float = 0.0,
    reorder_rate: float = 0.0,
    *,
    reorder_window_s: float = 60.0,
) -> Dataset:
    """``n_events`` records of simulated orders with the exact fault mix (see module doc)."""
    if n_events < 1:
        raise ValueError(f"n_events must be at least 1, got {n_events}")
    n_invalid = _count(n_events, invalid_rate, "invalid_rate")
    n_dup = _count(n_events, dup_rate, "dup_rate")
    n_valid = n_events - n_invalid - n_dup
    if n_valid < 0 or (n_dup and n_valid == 0):
        raise ValueError("invalid_rate + dup_rate leave no valid records")
    n_reordered = _count(n_valid, reorder_rate, "reorder_rate")
    rng = random.Random(f"{seed}:dataset")

    valid, base = _events(seed, n_valid, n_invalid)
    valid.sort(key=lambda e: e.event_time)  # wire order is event order without scenarios
    now = (max(e.event_time for e in valid) if valid else DATASET_START) + timedelta(minutes=1)

    # Sort keys place every record: originals by (possibly reordered) position, each
    # duplicate a little after its original, invalid records anywhere.
    positions = _reorder(valid, n_reordered, reorder_window_s, rng)
    moved = {i for i, pos in enumerate(positions) if pos != float(i)}
    valid_bytes = [(e.order_id.encode(), e.to_json()) for e in valid]
    keyed: list[tuple[float, int, Record, str]] = [
        (pos, i, record, "valid") for i, (pos, record) in enumerate(zip(positions, valid_bytes, strict=True))
    ]
    seq = len(keyed)  # for valid originals the tie-breaker is their index in ``valid``
    for _ in range(n_dup):
        src = rng.randrange(n_valid)
        keyed.append((positions[src] + rng.uniform(0.01, DUP_MAX_DISTANCE), seq, valid_bytes[src], "dup"))
        seq += 1
    for j, event in enumerate(base):
        kind = _KINDS[j % len(_KINDS)]
        keyed.append((rng.uniform(-0.5, n_valid), seq, _corrupt(kind, event, j // len(_KINDS), now), kind.value))
        seq += 1
    keyed.sort()

    records: list[Record] = []
    invalid: dict[int, InvalidKind] = {}
    duplicates: set[int] = set()
    reordered: set[int] = set()
    for index, (_, original, record, tag) in enumerate(keyed):
        records.append(record)
        if tag == "dup":
            duplicates.add(index)
        elif tag == "valid":
            if original in moved:
                reordered.add(index)
        else:
            invalid[index] = InvalidKind(tag)
    return Dataset(
        records=records,
        valid_event_ids=frozenset(e.event_id for e in valid),
        invalid=invalid,
        duplicates=frozenset(duplicates),
        reordered=frozenset(reordered),
        now=now,
    )
