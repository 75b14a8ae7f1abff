"""The event contract accepts good events and rejects each kind of bad one, naming why."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.contract import (
    MAX_EVENT_BYTES,
    OrderEvent,
    RejectCode,
    Rejection,
    Status,
    is_legal,
    validate_event,
    validate_record,
)

NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)

GOOD = {
    "event_id": "e-1",
    "order_id": "o-1",
    "sku": "sku-1",
    "qty": 2,
    "status": "packed",
    "event_time": "2026-11-11T18:00:00+08:00",
    "source": "wms-hz",
    "channel": "tmall",
    "warehouse": "HZ-WH-1",
    "carrier": "SF",
    "device_id": "PDA-7",
    "lat": 30.27,
    "lon": 120.15,
    "crs": "gcj02",
    "promised_by": "2026-11-13T23:59:00+08:00",
    "attributes": {"batch": "B7", "fragile": True},
}


def encode(**changes: object) -> bytes:
    event = {**GOOD, **changes}
    return orjson.dumps({k: v for k, v in event.items() if v is not None})


def rejected(raw: bytes) -> Rejection:
    result = validate_event(raw, NOW)
    assert isinstance(result, Rejection), result
    return result


def test_good_event_is_accepted_with_types() -> None:
    event = validate_event(encode(), NOW)
    assert isinstance(event, OrderEvent)
    assert event.status is Status.PACKED
    assert event.event_time == datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
    assert event.event_ts_ns == int(event.event_time.timestamp()) * 1_000_000_000


def test_minimal_event_and_canonical_roundtrip() -> None:
    raw = orjson.dumps({k: GOOD[k] for k in ("event_id", "order_id", "sku", "status", "event_time", "source")})
    event = validate_event(raw, NOW)
    assert isinstance(event, OrderEvent)
    assert event.qty == 1 and event.lat is None
    again = validate_event(event.to_json(), NOW)
    assert again == event and again.to_json() == event.to_json()


@pytest.mark.parametrize(
    ("raw", "code", "field", "words"),
    [
        (encode(colour="red"), RejectCode.SCHEMA, "colour", "unknown field"),
        (encode(status="lost_in_space"), RejectCode.SCHEMA, "status", "Input should be"),
        (encode(event_id=None), RejectCode.SCHEMA, "event_id", "Field required"),
        (encode(event_id="x" * 129), RejectCode.SCHEMA, "event_id", "at most 128"),
        (encode(order_id="has space"), RejectCode.SCHEMA, "order_id", "should match pattern"),
        (encode(qty=0), RejectCode.SCHEMA, "qty", "greater than or equal to 1"),
        (encode(lat=95.0), RejectCode.SCHEMA, "lat", "less than or equal to 90"),
        (encode(lon=-200.0), RejectCode.SCHEMA, "lon", "greater than or equal to -180"),
        (encode(lat=None), RejectCode.SCHEMA, "(event)", "lat and lon must be given together"),
        (encode(lat=0.0, lon=0.0), RejectCode.SCHEMA, "(event)", "not a real position"),
        (encode(event_time="2026-11-11T10:00:00"), RejectCode.SCHEMA, "event_time", "UTC offset"),
        (encode(event_time="1999-12-31T00:00:00+00:00"), RejectCode.SCHEMA, "event_time", "before 2000"),
        (encode(event_time="yesterday"), RejectCode.SCHEMA, "event_time", "datetime"),
        (encode(event_time="2026-11-13T12:00:00+00:00"), RejectCode.FUTURE_TIME, "event_time", "ahead"),
        (encode(crs="mercator"), RejectCode.SCHEMA, "crs", "Input should be"),
        (encode(attributes={f"k{i}": i for i in range(17)}), RejectCode.SCHEMA, "attributes", "at most 16"),
        (encode(attributes={"note": "x" * 300}), RejectCode.SCHEMA, "attributes.note", "at most 256"),
        (encode(source=""), RejectCode.SCHEMA, "source", "at least 1"),
        (b'{"event_id": "e-1",', RejectCode.NOT_JSON, "(event)", "is not JSON"),
        (b"\xff\xfe\x00garbage", RejectCode.NOT_UTF8, "(event)", "UTF-8"),
        (b"[1, 2, 3]", RejectCode.NOT_OBJECT, "(event)", "JSON object"),
        (
            encode(attributes={"pad": "x" * 250, **{f"p{i}": "y" * 250 for i in range(15)}}) + b" " * MAX_EVENT_BYTES,
            RejectCode.OVERSIZE,
            "(event)",
            "exceeds",
        ),
    ],
)
def test_each_kind_of_bad_event_is_rejected_with_its_field_and_problem(
    raw: bytes, code: RejectCode, field: str, words: str
) -> None:
    rejection = rejected(raw)
    assert rejection.code is code
    assert any(p.field == field and words in p.problem for p in rejection.problems), rejection.problems
    assert rejection.as_dict()["code"] == code.value


def test_a_slightly_future_event_is_accepted_for_data_quality_to_judge() -> None:
    assert isinstance(validate_event(encode(event_time=(NOW + timedelta(hours=2)).isoformat()), NOW), OrderEvent)


def test_record_key_must_be_present_and_match_the_order() -> None:
    assert validate_record(None, encode(), NOW) == Rejection(
        RejectCode.MISSING_KEY,
        rejected_problem := validate_record(None, encode(), NOW).problems,  # type: ignore[union-attr]
    )
    assert rejected_problem[0].field == "(key)"
    mismatch = validate_record(b"o-2", encode(), NOW)
    assert isinstance(mismatch, Rejection) and mismatch.code is RejectCode.KEY_MISMATCH
    assert isinstance(validate_record(b"o-1", encode(), NOW), OrderEvent)


def test_transition_table() -> None:
    assert is_legal(None, Status.DELIVERED)  # first event seen may be anything
    assert is_legal(Status.OUT_FOR_DELIVERY, Status.DELIVERED)
    assert not is_legal(Status.PACKED, Status.DELIVERED)  # delivered before out for delivery
    assert not is_legal(Status.CANCELLED, Status.PICKED)  # events after cancellation
    assert is_legal(Status.HUB_ARRIVAL, Status.EXCEPTION)
    assert not is_legal(Status.DELIVERED, Status.EXCEPTION)


@given(st.binary(max_size=512))
def test_validator_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    assert isinstance(validate_event(raw, NOW), OrderEvent | Rejection)


@given(
    st.dictionaries(
        st.sampled_from(sorted(GOOD) + ["bogus"]),
        st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40), st.booleans()),
    )
)
def test_validator_never_raises_on_arbitrary_objects(obj: dict[str, object]) -> None:
    result = validate_event(json.dumps(obj).encode(), NOW)
    assert isinstance(result, OrderEvent | Rejection)
