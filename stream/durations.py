"""Human-friendly durations for rule files: ``90s``, ``45m``, ``36h``, ``2d``, ``1d12h``.

Rule files are written by operations staff, so ``within: 36h`` reads better than
ISO 8601 ``PT36H``. Plain numbers are seconds; ISO 8601 and ``timedelta`` pass through.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, TypeAdapter

_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?[dhms])+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNIT_SECONDS = {"d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0}
_HINT = "must be a duration such as 90s, 45m, 36h, 2d or 1d12h"
_ISO = TypeAdapter(timedelta)


def parse_duration(value: object) -> timedelta:
    """Parse one duration; raises ``ValueError`` saying what a duration looks like."""
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise ValueError(_HINT)
    elif isinstance(value, (int, float)):
        result = timedelta(seconds=float(value))
    elif isinstance(value, str):
        text = value.strip().replace(" ", "").lower()
        if _DURATION.match(text):
            result = timedelta(
                seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
            )
        elif text.startswith("p"):
            result = _ISO.validate_python(value.strip().upper())
        else:
            raise ValueError(f"{value!r} {_HINT}")
    else:
        raise ValueError(_HINT)
    if result < timedelta(0):
        raise ValueError("must not be negative")
    return result


def format_duration(value: timedelta) -> str:
    """Shortest ``1d2h3m4s`` form (the inverse of :func:`parse_duration`)."""
    total = value.total_seconds()
    if total == 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, total = divmod(total, size)
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
