"""Compact seeded randomness for the many shipments in flight at once.

``random.Random`` carries 2.5 KB of Mersenne Twister state; with hundreds of thousands
of parcels on the road that alone is gigabytes. :class:`SplitMix64` keeps one 64-bit
integer, is seeded from any text, and offers the few draws the simulator uses. It is
slower per draw than the C generator, which matters little next to building events.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
_MASK = (1 << 64) - 1
_TWO_POW_53 = float(1 << 53)


class Rng(Protocol):
    """The draws the simulator needs; ``random.Random`` and :class:`SplitMix64` both fit."""

    def random(self) -> float: ...

    def uniform(self, a: float, b: float) -> float: ...

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float: ...

    def randint(self, a: int, b: int) -> int: ...

    def choice(self, seq: Sequence[T]) -> T: ...


def seed_from(text: str) -> int:
    """A 64-bit seed from text; stable across runs and interpreters (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class SplitMix64:
    """Steele, Lea and Flood's SplitMix64: 64 bits of state, passes BigCrush."""

    __slots__ = ("_state",)

    def __init__(self, text_seed: str) -> None:
        self._state = seed_from(text_seed)

    def _next(self) -> int:
        self._state = z = (self._state + 0x9E3779B97F4A7C15) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        """Uniform in [0, 1) with 53 bits of precision."""
        return (self._next() >> 11) / _TWO_POW_53

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.random()

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        # Box-Muller; 1 - u keeps the logarithm finite.
        u1, u2 = self.random(), self.random()
        return mu + sigma * math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)

    def randint(self, a: int, b: int) -> int:
        """Uniform integer in [a, b] (inclusive, like ``random.randint``)."""
        if b < a:
            raise ValueError(f"empty range for randint({a}, {b})")
        return a + self._next() % (b - a + 1)  # bias below 2**-50 for the small ranges used

    def choice(self, seq: Sequence[T]) -> T:
        if not seq:
            raise IndexError("cannot choose from an empty sequence")
        return seq[self._next() % len(seq)]


class Weighted(Generic[T]):
    """Items drawn in proportion to their weights (cumulative table + bisection)."""

    __slots__ = ("items", "_cumulative")

    def __init__(self, pairs: Iterable[tuple[T, float]]) -> None:
        items, weights = zip(*pairs, strict=True)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        self.items: tuple[T, ...] = tuple(items)
        self._cumulative = tuple(itertools.accumulate(weights))

    def draw(self, rng: Rng) -> T:
        return self.items[bisect.bisect_right(self._cumulative, rng.random() * self._cumulative[-1])]
