"""Replays of history: how a replayed record is marked and recognised (one place).

``orderradar import --replay`` sends every event with the record header
:data:`REPLAY_HEADER` = the replay's id. A replayed record is judged in its own timeline
(its receipt time is its event time, its clock is its own newest event time; see
``stream.core.delays_engine``), and what it raises is recorded but never pages anyone.
The worker keeps the id on the order (extension :data:`REPLAY_EXTENSION`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REPLAY_HEADER = "orderradar-replay"
REPLAY_EXTENSION = "replay"
_ID = re.compile(r"[^A-Za-z0-9._-]+")


def replay_id(text: str) -> str:
    """A header-safe replay id from a file stem or a user's text."""
    cleaned = _ID.sub("-", text).strip("-.")[:64]
    if not cleaned:
        raise ValueError(f"replay id {text!r} has no usable characters (use A-Z a-z 0-9 . _ -)")
    return cleaned


def replay_of(headers: Iterable[tuple[str, bytes | None]]) -> str | None:
    """The replay id of a record (``None``: live)."""
    for name, value in headers:
        if name == REPLAY_HEADER and value:
            return value.decode("utf-8", "replace")
    return None


def replay_header(replay: str) -> tuple[str, bytes]:
    return (REPLAY_HEADER, replay.encode())


def timeline_of_order(extensions: dict[str, Any] | None) -> str | None:
    """The replay id stored on an order (``None``: live)."""
    value = (extensions or {}).get(REPLAY_EXTENSION)
    return value.get("id") if isinstance(value, dict) else None
