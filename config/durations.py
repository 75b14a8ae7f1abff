"""Durations as people write them in rule files and on the command line.

``250ms``, ``90s``, ``45m``, ``36h``, ``2d``, ``1w``, compounds such as ``1h30m`` or
``1d12h`` (Alertmanager's notation, so on-call staff read our files as they read theirs),
plain numbers as seconds (``90``, ``"90"``), and ISO 8601 (``PT36H``). The one parser of
durations for the SLA rules, the alerting policy, the worker's settings and the commands.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, TypeAdapter

_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|[wdhms]))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|[wdhms])")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_UNIT_SECONDS = {"w": 604_800.0, "d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
HINT = "must be a duration such as 90s, 45m, 36h, 2d or 1h30m"
_ISO = TypeAdapter(timedelta)


def parse_duration(value: object) -> timedelta:
    """Parse one duration; raises ``ValueError`` saying what a duration looks like."""
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"{HINT}, not a boolean")
    elif isinstance(value, (int, float)):
        result = timedelta(seconds=float(value))
    elif isinstance(value, str):
        text = value.strip().replace(" ", "").lower()
        if _NUMBER.match(text):
            result = timedelta(seconds=float(text))
        elif _DURATION.match(text):
            result = timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text)))
        elif text.startswith("p"):
            try:
                result = _ISO.validate_python(value.strip().upper())
            except ValueError:
                raise ValueError(f"{value!r} {HINT}") from None
        else:
            raise ValueError(f"{value!r} {HINT}")
    else:
        raise ValueError(f"{HINT}, not {type(value).__name__}")
    if result < timedelta(0):
        raise ValueError("a duration must not be negative")
    return result


def format_duration(value: timedelta) -> str:
    """Shortest ``1d2h3m4s`` form (the inverse of :func:`parse_duration`)."""
    total = value.total_seconds()
    if total == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, total = divmod(total, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{int(count)}{unit}")
    if total:
        parts.append(f"{total:g}s")
    return "".join(parts)


#: A ``timedelta`` field that accepts ``"36h"``-style strings and dumps back to them.
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
