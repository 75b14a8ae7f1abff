"""Ingest batches: JSON arrays and NDJSON, valid events kept, every problem reported."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import orjson
import pytest

from dashboard.gateway.batch import BatchError, BatchFormat, media_format, parse_batch
from gateway.harness import ingest_event

NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)


event = partial(ingest_event, warehouse=None)


def test_a_json_array_of_valid_events_is_accepted_in_order() -> None:
    body = orjson.dumps([event(1), event(2)])
    result = parse_batch(body, BatchFormat.JSON, "wms", NOW, 100)
    assert [e.event_id for e in result.accepted] == ["e-1", "e-2"] and result.rejected == []


def test_ndjson_lines_are_events_and_blank_lines_are_ignored() -> None:
    body = b"\n".join([orjson.dumps(event(1)), b"", orjson.dumps(event(2)), b""])
    result = parse_batch(body, BatchFormat.NDJSON, "wms", NOW, 100)
    assert [e.event_id for e in result.accepted] == ["e-1", "e-2"]


def test_a_mixed_batch_keeps_valid_events_and_names_index_event_and_field_of_each_problem() -> None:
    body = orjson.dumps(
        [
            event(0),
            event(1, status="teleported"),
            event(2, lat=91.0, lon=10.0),
            "not an object",
            event(4, colour="red"),
            event(5, source="tms"),
            event(0),
        ]
    )
    result = parse_batch(body, BatchFormat.JSON, "wms", NOW, 100)
    assert [e.event_id for e in result.accepted] == ["e-0"]
    flat = [entry for r in result.rejected for entry in r.as_dicts()]
    by_index = {entry["index"]: entry for entry in flat}
    assert by_index[1]["event_id"] == "e-1" and by_index[1]["field"] == "status"
    assert by_index[2]["field"] == "lat"
    assert by_index[3]["event_id"] is None and by_index[3]["code"] == "not_object"
    assert by_index[4]["field"] == "colour" and by_index[4]["problem"] == "unknown field"
    assert by_index[5]["field"] == "source" and "tms" in by_index[5]["problem"]
    assert by_index[6]["field"] == "event_id" and "twice" in by_index[6]["problem"]


def test_a_broken_ndjson_line_is_one_rejection_not_a_failed_batch() -> None:
    body = orjson.dumps(event(1)) + b"\n{not json\n" + orjson.dumps(event(2))
    result = parse_batch(body, BatchFormat.NDJSON, "wms", NOW, 100)
    assert len(result.accepted) == 2
    assert [(r.index, r.rejection.code.value) for r in result.rejected] == [(1, "not_json")]


@pytest.mark.parametrize(
    ("body", "fmt", "message"),
    [
        (b"[", BatchFormat.JSON, "not valid JSON"),
        (b"42", BatchFormat.JSON, "JSON array"),
        (b"[]", BatchFormat.JSON, "empty"),
        (b"\n\n", BatchFormat.NDJSON, "empty"),
    ],
)
def test_unusable_bodies_fail_as_a_whole(body: bytes, fmt: BatchFormat, message: str) -> None:
    with pytest.raises(BatchError, match=message):
        parse_batch(body, fmt, "wms", NOW, 100)


def test_too_many_events_fail_as_a_whole() -> None:
    with pytest.raises(BatchError, match="at most 2"):
        parse_batch(orjson.dumps([event(i) for i in range(3)]), BatchFormat.JSON, "wms", NOW, 2)


def test_oversize_events_are_rejected_in_both_formats() -> None:
    # Schema-valid, but 16 attributes of 256 three-byte characters encode to over 8 KiB.
    many = event(2, attributes={f"k{i}": "运" * 256 for i in range(16)})
    for fmt, body in ((BatchFormat.JSON, orjson.dumps([many])), (BatchFormat.NDJSON, orjson.dumps(many))):
        result = parse_batch(body, fmt, "wms", NOW, 10)
        assert result.accepted == [] and result.rejected[0].rejection.code.value == "oversize"


def test_content_types_map_to_formats() -> None:
    assert media_format("application/json; charset=utf-8") is BatchFormat.JSON
    assert media_format("application/x-ndjson") is BatchFormat.NDJSON
    assert media_format("text/plain") is None and media_format(None) is None
