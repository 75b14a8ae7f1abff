"""Dead-letter envelopes and influx-dlq chunks (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from stream.contract import Rejection, validate_record
from stream.core import dlq

NOW = datetime(2026, 11, 11, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    "key, value, code",
    [
        (b"o-1", b"\xff\xfe not utf-8", "not_utf8"),
        (b"o-1", b"{broken", "not_json"),
        (None, b'{"event_id": "e"}', "missing_key"),
        (b"o-1", orjson.dumps({"event_id": "e-7", "order_id": "o-1"}), "schema"),
    ],
)
def test_envelope_keeps_the_original_bytes_and_a_machine_readable_reason(
    key: bytes | None, value: bytes, code: str
) -> None:
    rejection = validate_record(key, value, NOW)
    assert isinstance(rejection, Rejection)
    source = dlq.SourceCoordinates("order-events", 3, 42, 1_700_000_000_000)
    letter = dlq.dead_letter(rejection, source, key, value, [("trace", b"\x00\x01")], NOW)
    decoded = dlq.decode(dlq.encode(letter))
    assert decoded == letter
    assert decoded.value == value and decoded.key == key and decoded.headers == (("trace", b"\x00\x01"),)
    assert decoded.code == code and decoded.source.offset == 42
    envelope = orjson.loads(dlq.encode(letter))
    assert envelope["v"] == 1 and envelope["reason"]["code"] == code
    assert isinstance(envelope["reason"]["problems"], list)


def test_schema_problems_name_each_field_and_ids_are_extracted() -> None:
    value = orjson.dumps(
        {
            "event_id": "e-7",
            "order_id": "o-1",
            "sku": "s",
            "status": "teleported",
            "event_time": "2026-11-11T08:00:00+00:00",
            "source": "x",
            "lat": 12.0,
        }
    )
    rejection = validate_record(b"o-1", value, NOW)
    assert isinstance(rejection, Rejection)
    letter = dlq.dead_letter(rejection, dlq.SourceCoordinates("t", 0, 1), b"o-1", value, [], NOW)
    fields = {p["field"] for p in letter.reason["problems"]}
    assert "status" in fields
    assert letter.event_id == "e-7" and letter.order_id == "o-1"
    assert "status:" in letter.summary()


def test_decode_rejects_what_is_not_an_envelope() -> None:
    for raw in (b"nope", b"[]", orjson.dumps({"v": 2})):
        with pytest.raises(dlq.EnvelopeError):
            dlq.decode(raw)


def test_influx_chunks_respect_the_size_limit_and_keep_every_line() -> None:
    lines = [f"m,t=x v={i}i {i}" for i in range(1000)]
    chunks = dlq.chunk_lines(lines, max_bytes=2000)
    assert all(len(c) <= 2000 for c in chunks) and len(chunks) > 5
    assert b"\n".join(chunks).decode().split("\n") == lines
    headers = dlq.influx_headers(dlq.InfluxFailure.CIRCUIT_OPEN, 0, "down")
    assert dlq.influx_reason(headers) is dlq.InfluxFailure.CIRCUIT_OPEN
    assert dlq.InfluxFailure.CIRCUIT_OPEN.replayable and not dlq.InfluxFailure.REJECTED.replayable
