"""Dead-letter records: rejected input (``order-events-dlq``) and unwritten points (``influx-dlq``).

``order-events-dlq``: one record per rejected input record, key = the original key (so it
lands with its order), value = a JSON envelope (version 1)::

    {"v": 1,
     "reason": {"code": "schema", "problems": [{"field": "lat", "problem": "..."}]},
     "source": {"topic": "order-events", "partition": 3, "offset": 1234, "timestamp_ms": ...},
     "key_b64": "...", "value_b64": "...", "headers": [["name", "<base64>"], ...],
     "event_id": "..." | null, "order_id": "..." | null,
     "dead_lettered_at": "2026-11-11T10:00:00+00:00"}

The original bytes are kept exactly (base64, because a rejected value may not be UTF-8 or
JSON at all) so ``orderradar dlq redrive`` re-produces precisely what was received;
``event_id``/``order_id`` are best-effort extracts for filtering.

Events rejected by the ingest API (``POST /api/v1/events``) never reached a topic; their
envelope says so with ``source`` = ``{"topic": "http:/api/v1/events", "partition": -1,
"offset": <index in the batch>, ...}`` (:func:`http_coordinates`) and adds ``"sender"``:
the source whose API key sent them (re-driving checks the event still names it). The key
is the event's ``order_id`` when it had a readable one; a JSON-array item's value is its
JSON re-encoded, an NDJSON line's value its bytes as received.

``influx-dlq``: one record per chunk of line protocol whose write to InfluxDB failed
after retries; value = the lines (UTF-8, newline separated), headers ``reason``
(:class:`InfluxFailure`), ``attempts`` and ``error``. The replayer rewrites them when
InfluxDB is back; ``rejected`` chunks (InfluxDB said 4xx: a bug in our points) are kept for
inspection and not retried.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from stream.contract import Rejection

ENVELOPE_VERSION = 1

#: ``source.topic`` of events rejected at the HTTP edge (they were never on a topic).
HTTP_EDGE = "http:/api/v1/events"

#: Largest value of one ``influx-dlq`` record; bigger write batches are split.
INFLUX_DLQ_CHUNK_BYTES = 512 * 1024


class EnvelopeError(ValueError):
    """A dead-letter record is not a version-1 envelope."""


@dataclass(frozen=True, slots=True)
class SourceCoordinates:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected input record with its reason."""

    reason: dict[str, Any]
    source: SourceCoordinates
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    dead_lettered_at: str
    event_id: str | None = None
    order_id: str | None = None
    #: The authenticated source that sent it over HTTP (``None`` for bus records).
    sender: str | None = None

    @property
    def via_http(self) -> bool:
        return self.source.topic == HTTP_EDGE

    @property
    def code(self) -> str:
        return str(self.reason.get("code", ""))

    def summary(self) -> str:
        problems = "; ".join(f"{p.get('field')}: {p.get('problem')}" for p in self.reason.get("problems", []))
        return f"{self.code}: {problems}" if problems else self.code


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode("ascii") if data is not None else None


def _unb64(text: str | None) -> bytes | None:
    return base64.b64decode(text) if text is not None else None


def _best_effort_id(value: bytes | None, name: str) -> str | None:
    if not value:
        return None
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    found = obj.get(name) if isinstance(obj, dict) else None
    return found[:128] if isinstance(found, str) else None


def http_coordinates(index: int, received: datetime) -> SourceCoordinates:
    """Where an event rejected by the ingest API "was": its index in the request's batch."""
    return SourceCoordinates(HTTP_EDGE, -1, index, int(received.timestamp() * 1000))


def dead_letter(
    rejection: Rejection,
    source: SourceCoordinates,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    now: datetime,
    sender: str | None = None,
) -> DeadLetter:
    return DeadLetter(
        sender=sender,
        reason=rejection.as_dict(),
        source=source,
        key=key,
        value=value,
        headers=tuple(headers),
        dead_lettered_at=now.isoformat(),
        event_id=_best_effort_id(value, "event_id"),
        order_id=key.decode("utf-8", "replace")[:128] if key else _best_effort_id(value, "order_id"),
    )


def encode(letter: DeadLetter) -> bytes:
    return orjson.dumps(envelope(letter))


def envelope(letter: DeadLetter) -> dict[str, Any]:
    """The version-1 envelope as JSON data (what :func:`encode` serialises)."""
    return {
        "v": ENVELOPE_VERSION,
        "reason": letter.reason,
        "source": {
            "topic": letter.source.topic,
            "partition": letter.source.partition,
            "offset": letter.source.offset,
            "timestamp_ms": letter.source.timestamp_ms,
        },
        "key_b64": _b64(letter.key),
        "value_b64": _b64(letter.value),
        "headers": [[name, _b64(data)] for name, data in letter.headers],
        "event_id": letter.event_id,
        "order_id": letter.order_id,
        "dead_lettered_at": letter.dead_lettered_at,
        **({"sender": letter.sender} if letter.sender is not None else {}),
    }


def decode(raw: bytes) -> DeadLetter:
    try:
        obj = orjson.loads(raw)
        if obj.get("v") != ENVELOPE_VERSION:
            raise EnvelopeError(f"envelope version {obj.get('v')!r}, expected {ENVELOPE_VERSION}")
        src = obj["source"]
        return DeadLetter(
            reason=obj["reason"],
            source=SourceCoordinates(src["topic"], int(src["partition"]), int(src["offset"]), src.get("timestamp_ms")),
            key=_unb64(obj.get("key_b64")),
            value=_unb64(obj.get("value_b64")),
            headers=tuple((name, _unb64(data) or b"") for name, data in obj.get("headers", [])),
            dead_lettered_at=obj["dead_lettered_at"],
            event_id=obj.get("event_id"),
            order_id=obj.get("order_id"),
            sender=obj.get("sender"),
        )
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, EnvelopeError):
            raise
        raise EnvelopeError(f"not a dead-letter envelope: {exc}") from exc


class InfluxFailure(StrEnum):
    """Why a chunk of points went to ``influx-dlq``."""

    #: Retries exhausted (network errors, timeouts, 429, 5xx): replayed when InfluxDB is back.
    RETRIES_EXHAUSTED = "retries_exhausted"
    #: The writer's circuit was open (InfluxDB recently down): replayed.
    CIRCUIT_OPEN = "circuit_open"
    #: InfluxDB answered 4xx (not 429): a bug in the points; kept, not replayed.
    REJECTED = "rejected"

    @property
    def replayable(self) -> bool:
        return self is not InfluxFailure.REJECTED


def chunk_lines(lines: Sequence[str], max_bytes: int = INFLUX_DLQ_CHUNK_BYTES) -> list[bytes]:
    """Split lines into newline-joined chunks of at most ``max_bytes`` (a longer single
    line makes its own chunk)."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for text in lines:
        data = text.encode()
        if current and size + len(data) + 1 > max_bytes:
            chunks.append(b"\n".join(current))
            current, size = [], 0
        current.append(data)
        size += len(data) + 1
    if current:
        chunks.append(b"\n".join(current))
    return chunks


def influx_headers(reason: InfluxFailure, attempts: int, error: str) -> list[tuple[str, bytes]]:
    return [("reason", reason.value.encode()), ("attempts", str(attempts).encode()), ("error", error[:500].encode())]


def influx_reason(headers: Sequence[tuple[str, bytes]]) -> InfluxFailure | None:
    for name, value in headers:
        if name == "reason":
            try:
                return InfluxFailure(value.decode())
            except ValueError:
                return None
    return None
