"""Parsing one ingest batch (JSON array or NDJSON) into accepted events and rejections. Pure.

Each event is validated on its own with the event contract, so one bad event never sinks
the batch: the result lists the valid events (to publish) and, for each invalid one, its
index in the batch, its ``event_id`` when readable, every field and problem, and its value
(an NDJSON line as received, a JSON-array item re-encoded) for the dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from stream.contract import MAX_EVENT_BYTES, OrderEvent, Problem, RejectCode, Rejection, parse_event_obj, validate_event


class BatchFormat(StrEnum):
    JSON = "application/json"
    NDJSON = "application/x-ndjson"


#: Content types accepted for each format (``application/jsonl`` is a common alias).
MEDIA_TYPES: dict[str, BatchFormat] = {
    "application/json": BatchFormat.JSON,
    "application/x-ndjson": BatchFormat.NDJSON,
    "application/ndjson": BatchFormat.NDJSON,
    "application/jsonl": BatchFormat.NDJSON,
    "application/x-jsonlines": BatchFormat.NDJSON,
}


class BatchError(ValueError):
    """The body as a whole is unusable (not JSON, not an array, too many events)."""


@dataclass(frozen=True)
class EventRejection:
    index: int
    event_id: str | None
    rejection: Rejection
    #: The event as received (what ``orderradar dlq redrive`` re-produces).
    value: bytes = b""
    order_id: str | None = None

    def as_dicts(self) -> list[dict[str, Any]]:
        """One flat record per problem: what API clients print or log line by line."""
        problems = self.rejection.problems or (Problem("(event)", self.rejection.code.value),)
        return [
            {
                "index": self.index,
                "event_id": self.event_id,
                "code": self.rejection.code.value,
                "field": p.field,
                "problem": p.problem,
            }
            for p in problems
        ]


@dataclass
class BatchResult:
    accepted: list[OrderEvent] = field(default_factory=list)
    rejected: list[EventRejection] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.accepted) + len(self.rejected)


def media_format(content_type: str | None) -> BatchFormat | None:
    """The batch format of a ``Content-Type`` header value (parameters ignored)."""
    if not content_type:
        return None
    return MEDIA_TYPES.get(content_type.split(";", 1)[0].strip().lower())


def _id_of(obj: object, name: str) -> str | None:
    if isinstance(obj, dict):
        value = obj.get(name)
        if isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return None


def _split(body: bytes, fmt: BatchFormat, max_events: int) -> list[bytes | object]:
    """The batch's items: raw lines (NDJSON) or decoded values (JSON)."""
    if fmt is BatchFormat.NDJSON:
        lines: list[bytes | object] = [line for line in body.split(b"\n") if line.strip()]
        items = lines
    else:
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BatchError(f"body is not valid JSON: {exc}") from None
        if isinstance(decoded, dict):
            decoded = [decoded]  # a single event is a batch of one
        if not isinstance(decoded, list):
            raise BatchError("body must be a JSON array of events (or one event object)")
        items = decoded
    if not items:
        raise BatchError("batch is empty")
    if len(items) > max_events:
        raise BatchError(f"batch has {len(items)} events; at most {max_events} per request")
    return items


def parse_batch(body: bytes, fmt: BatchFormat, source: str, now: datetime, max_events: int) -> BatchResult:
    """Validate every event of ``body``; raise :class:`BatchError` when the body is unusable.

    ``source`` is the authenticated sender: an event naming another source is rejected,
    so one source's key cannot inject events on behalf of another.
    """
    result = BatchResult()
    seen: set[str] = set()
    for index, item in enumerate(_split(body, fmt, max_events)):
        if isinstance(item, bytes):
            outcome = validate_event(item, now)
            raw_obj: object = None
            value = item
            if isinstance(outcome, Rejection):
                try:
                    raw_obj = orjson.loads(item)
                except orjson.JSONDecodeError:
                    raw_obj = None
        else:
            raw_obj = item
            value = orjson.dumps(item)
            outcome = parse_event_obj(item, now)
            if isinstance(outcome, OrderEvent) and len(outcome.to_json()) > MAX_EVENT_BYTES:
                outcome = Rejection(
                    RejectCode.OVERSIZE, (Problem("(event)", f"encoded event exceeds {MAX_EVENT_BYTES} bytes"),)
                )
        if isinstance(outcome, Rejection):
            result.rejected.append(
                EventRejection(index, _id_of(raw_obj, "event_id"), outcome, value, _id_of(raw_obj, "order_id"))
            )
            continue
        if outcome.source != source:
            problem = Problem("source", f"is {outcome.source!r} but the API key belongs to source {source!r}")
            result.rejected.append(
                EventRejection(
                    index, outcome.event_id, Rejection(RejectCode.SCHEMA, (problem,)), value, outcome.order_id
                )
            )
            continue
        if outcome.event_id in seen:
            problem = Problem("event_id", "appears twice in this batch")
            result.rejected.append(
                EventRejection(
                    index, outcome.event_id, Rejection(RejectCode.SCHEMA, (problem,)), value, outcome.order_id
                )
            )
            continue
        seen.add(outcome.event_id)
        result.accepted.append(outcome)
    return result
