"""Retry timing: exponential backoff with jitter, and ``Retry-After`` parsing. Pure.

One :class:`RetryPolicy` for every remote call that retries: alert delivery (channels and
their outbox) and the InfluxDB writer (``stream.sinks.influx.INFLUX_RETRY``).

Jitter comes from a hash of (key, attempt) rather than a random generator, so a retry
schedule is reproducible after a restart and still spreads receivers apart.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try a remote call. Times are seconds."""

    #: Attempts within one delivery call (the first one included).
    attempts: int = 3
    base_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 30.0
    #: Fraction of each delay that is randomised (0.5 => delay in [0.5d, d]).
    jitter: float = 0.5
    #: Hard cap on one attempt, whatever the channel's own timeouts say.
    attempt_timeout: float = 15.0
    #: Retry-After values above this are capped (a bad proxy can say "come back in a day").
    max_retry_after: float = 300.0
    #: Backoff between calls once a call used up its attempts: the alert outbox's next
    #: delivery call, the InfluxDB writer's circuit cool-down (both grow by ``multiplier``).
    later_base_delay: float = 30.0
    later_max_delay: float = 900.0
    #: After this long since first queued, a notification is abandoned (and recorded).
    give_up_after: float = 86400.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def delay_cap(self, attempt: int) -> float:
        """The delay before retry number ``attempt`` (1-based) before jitter takes its share."""
        return _grown(self.base_delay, self.multiplier, self.max_delay, attempt)

    def delay(self, attempt: int, fraction: float) -> float:
        """:meth:`delay_cap` less ``jitter`` x ``fraction`` of it (``fraction`` in [0, 1]: a
        random draw; alert delivery uses a hash instead, see :func:`backoff_delay`)."""
        return self.delay_cap(attempt) * (1.0 - self.jitter * fraction)


def _unit_fraction(key: str, attempt: int) -> float:
    digest = hashlib.sha256(f"{key}|{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def backoff_delay(key: str, attempt: int, *, base: float, multiplier: float, cap: float, jitter: float) -> float:
    """Delay before retry number ``attempt`` (1-based) of ``key``."""
    return _grown(base, multiplier, cap, attempt) * (1.0 - jitter * _unit_fraction(key, attempt))


def _grown(base: float, multiplier: float, cap: float, attempt: int) -> float:
    """``base`` grown by ``multiplier`` per retry after the first, at most ``cap``."""
    return min(cap, base * multiplier ** max(attempt - 1, 0))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), or ``None``."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - now) / timedelta(seconds=1)
    if not math.isfinite(seconds):
        return None  # "nan", "inf": not a time to wait
    return max(seconds, 0.0)
