"""The compact per-shipment random stream and weighted draws."""

from __future__ import annotations

import statistics
from collections import Counter

import pytest

from orderradar.simulator.randomness import SplitMix64, Weighted, seed_from


def test_same_text_seed_same_stream_other_seed_other_stream():
    a, b, c = SplitMix64("7:ship:1:0"), SplitMix64("7:ship:1:0"), SplitMix64("7:ship:1:1")
    first = [a.random() for _ in range(5)]
    assert first == [b.random() for _ in range(5)]
    assert first != [c.random() for _ in range(5)]
    assert seed_from("x") == seed_from("x") != seed_from("y")


def test_draws_have_the_right_ranges_and_moments():
    rng = SplitMix64("moments")
    u = [rng.random() for _ in range(20_000)]
    assert min(u) >= 0.0 and max(u) < 1.0
    assert statistics.fmean(u) == pytest.approx(0.5, abs=0.01)
    g = [rng.gauss(10.0, 2.0) for _ in range(20_000)]
    assert statistics.fmean(g) == pytest.approx(10.0, abs=0.05)
    assert statistics.stdev(g) == pytest.approx(2.0, rel=0.03)
    ints = Counter(rng.randint(1, 4) for _ in range(8000))
    assert set(ints) == {1, 2, 3, 4} and min(ints.values()) > 1800
    assert all(3.0 <= rng.uniform(3.0, 4.0) < 4.0 for _ in range(1000))
    assert rng.choice("abc") in "abc"
    with pytest.raises(ValueError, match="empty range"):
        rng.randint(2, 1)


def test_weighted_draws_follow_the_weights():
    table = Weighted([("a", 1.0), ("b", 3.0), ("never", 0.0)])
    rng = SplitMix64("weights")
    counts = Counter(table.draw(rng) for _ in range(20_000))
    assert counts["never"] == 0
    assert counts["b"] / counts["a"] == pytest.approx(3.0, rel=0.06)
    with pytest.raises(ValueError, match="positive sum"):
        Weighted([("a", 0.0)])
