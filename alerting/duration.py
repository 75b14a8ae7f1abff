"""Durations in rule files: ``30s``, ``5m``, ``4h``, ``1d``, ``1h30m`` or plain seconds.

Alertmanager writes its timings this way, so on-call engineers can read our policy file
the same way they read theirs.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: object) -> timedelta:
    """Parse a duration; raise ``ValueError`` saying what a valid one looks like."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration like '30s', '5m', '4h', got a boolean")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("duration must not be negative")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like '30s', '5m', '4h', got {type(value).__name__}")
    text = value.strip()
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"expected a duration like '30s', '5m', '4h' or '1h30m', got {value!r}")
    return timedelta(seconds=total)


def format_duration(value: timedelta) -> str:
    """Render as seconds (``"90s"``): exact and parseable back."""
    seconds = value.total_seconds()
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds}s"


#: A pydantic field type accepting the rule-file notation.
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
