"""Token-bucket rate limiting per key (ingest source, client address, login name). Pure.

``now`` is a monotonic time in seconds passed in by the caller. The number of keys is
bounded: the least recently used buckets are forgotten first (a forgotten bucket is full,
which only ever errs towards letting a request through).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    #: Seconds until one token is available again (0 when allowed).
    retry_after_s: float


@dataclass
class TokenBucket:
    rate_per_s: float
    capacity: float
    tokens: float
    updated_at: float

    def take(self, now: float, cost: float = 1.0) -> RateDecision:
        elapsed = max(0.0, now - self.updated_at)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        self.updated_at = now
        if self.tokens >= cost:
            self.tokens -= cost
            return RateDecision(True, 0.0)
        return RateDecision(False, (cost - self.tokens) / self.rate_per_s)


class KeyedRateLimiter:
    """One :class:`TokenBucket` per key, at most ``max_keys`` of them."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float, cost: float = 1.0) -> RateDecision:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_s, float(self.burst), float(self.burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now, cost)

    def refund(self, key: str, cost: float = 1.0) -> None:
        """Give back what a ``take`` spent (a login that succeeded does not count)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(bucket.capacity, bucket.tokens + cost)

    def peek_allowed(self, key: str, now: float) -> bool:
        """Whether ``take`` would allow one now, without spending a token."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return True
        tokens = min(bucket.capacity, bucket.tokens + max(0.0, now - bucket.updated_at) * bucket.rate_per_s)
        return tokens >= 1.0
