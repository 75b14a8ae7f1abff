"""Sync lag per source: arrival time minus event time (pure; times are passed in).

How late a source tells us what happened is the problem this product exists to expose
(industry average status-sync lag: 11.6 minutes). For each source and partition we count
lags in fixed log buckets (1 % wide from 10 ms, so memory is bounded whatever the volume)
per arrival minute, and report p50 / p99 / max per source, partition and minute (InfluxDB
``sync_lag``: a partition's records arrive in order, so its minute is complete when it
moves on, whatever the other partitions do, even when a backlog is caught up) and per
source over the last ``window_s`` of arrivals (the war-room and ``/metrics``). Quantiles are nearest
rank over the buckets, reported as the bucket's geometric midpoint (within 0.5 %).
Replayed records are not counted: their arrival is the import, not the source's sync.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MIN_LAG_S = 0.01
_STEP = math.log(1.01)


def lag_bucket(seconds: float) -> int:
    """Bucket 0: below 10 ms (clock skew that puts the event after its arrival included)."""
    if seconds < MIN_LAG_S:
        return 0
    return 1 + int(math.log(seconds / MIN_LAG_S) / _STEP)


def bucket_value(index: int) -> float:
    if index == 0:
        return 0.0
    return MIN_LAG_S * math.exp((index - 0.5) * _STEP)


def quantile(counts: Counter[int], q: float) -> float | None:
    """Nearest-rank ``q`` quantile of bucketed lags (``None`` when empty)."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index in sorted(counts):
        seen += counts[index]
        if seen >= rank:
            return bucket_value(index)
    return bucket_value(max(counts))


@dataclass(slots=True)
class _Minute:
    counts: Counter[int] = field(default_factory=Counter)
    max_s: float = 0.0


@dataclass(frozen=True, slots=True)
class LagFigures:
    source: str
    count: int
    p50_s: float
    p99_s: float
    max_s: float

    def fields(self) -> dict[str, Any]:
        return {
            "p50_s": round(self.p50_s, 3),
            "p99_s": round(self.p99_s, 3),
            "max_s": round(self.max_s, 3),
            "count": self.count,
        }


class SyncLag:
    """Lag histograms per source and arrival minute, the last ``window_s`` of them kept."""

    def __init__(self, window_s: float = 300.0) -> None:
        self.window_s = window_s
        self._minutes: dict[tuple[str, int], dict[int, _Minute]] = {}
        self._dirty: set[tuple[str, int, int]] = set()

    def observe(self, source: str, event_time: float, arrival: float, partition: int = 0) -> None:
        lag = arrival - event_time
        minute = int(arrival // 60)
        minutes = self._minutes.setdefault((source, partition), {})
        m = minutes.get(minute)
        if m is None:
            m = minutes[minute] = _Minute()
        m.counts[lag_bucket(lag)] += 1
        m.max_s = max(m.max_s, lag)
        self._dirty.add((source, partition, minute))

    def _figures(self, source: str, minutes: list[_Minute]) -> LagFigures | None:
        counts: Counter[int] = Counter()
        for m in minutes:
            counts.update(m.counts)
        p50, p99 = quantile(counts, 0.5), quantile(counts, 0.99)
        if p50 is None or p99 is None:
            return None
        return LagFigures(source, sum(counts.values()), p50, p99, max(m.max_s for m in minutes))

    def take_minutes(self) -> list[tuple[int, int, LagFigures]]:
        """(minute, partition, figures) of the arrival minutes changed since the last call."""
        out = []
        for source, partition, minute in sorted(self._dirty):
            m = self._minutes.get((source, partition), {}).get(minute)
            figures = self._figures(source, [m]) if m is not None else None
            if figures is not None:
                out.append((minute, partition, figures))
        self._dirty.clear()
        # written: keep only what the window needs (a backlog's minutes were just emitted)
        for minutes in self._minutes.values():
            keep = max(minutes, default=0) - math.ceil(self.window_s / 60)
            for old in [k for k in minutes if k < keep]:
                del minutes[old]
        return out

    def window(self, now: float) -> list[LagFigures]:
        """Each source's figures over arrivals in the last ``window_s`` before ``now``."""
        low = int((now - self.window_s) // 60)
        recent: dict[str, list[_Minute]] = {}
        for (source, _partition), minutes in self._minutes.items():
            recent.setdefault(source, []).extend(m for k, m in minutes.items() if k >= low)
        out = []
        for source in sorted(recent):
            figures = self._figures(source, recent[source]) if recent[source] else None
            if figures is not None:
                out.append(figures)
        return out
