"""Streaming stage-duration statistics per lane, for at-risk prediction and ETA ranges.

A *lane* is warehouse x carrier x region. For every lane we keep fixed-bucket logarithmic
histograms of observed durations (time from entering a stage to the event that ends it,
and time from entering a status to delivery). Fixed buckets make the structure:

* bounded: at most :data:`BUCKETS` counters per histogram, and at most
  ``max_histograms`` histograms (least recently updated evicted first);
* deterministic: the same observations in the same order give bit-identical answers
  (no random sampling, no data-dependent centroids as in a t-digest);
* mergeable: counts add, so per-partition statistics can be combined.

Resolution is 2**(1/8) (about 9 %) from one minute to about 200 days. Each histogram keeps
two generations rotated every ``rotate_every`` of event time, so quantiles follow the
recent past rather than all history.

Sparse lanes fall back to coarser ones: (w, c, r) -> (*, c, r) -> (*, c, *) -> (*, *, *);
every observation is counted at all four levels.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from config.durations import Duration

#: Bucket 0 holds [0, 60 s); bucket i >= 1 holds [60 * 2**((i-1)/8), 60 * 2**(i/8)).
MIN_SECONDS = 60.0
STEPS_PER_DOUBLING = 8
BUCKETS = 1 + STEPS_PER_DOUBLING * 18  # up to 60 s * 2**18, about 182 days
_LOG_STEP = math.log(2.0) / STEPS_PER_DOUBLING


def bucket_of(seconds: float) -> int:
    if seconds < MIN_SECONDS:
        return 0
    index = 1 + int(math.log(seconds / MIN_SECONDS) / _LOG_STEP)
    return min(index, BUCKETS - 1)


def bucket_bounds(index: int) -> tuple[float, float]:
    if index == 0:
        return 0.0, MIN_SECONDS
    return (
        MIN_SECONDS * math.exp((index - 1) * _LOG_STEP),
        MIN_SECONDS * math.exp(index * _LOG_STEP),
    )


def _value_in_bucket(index: int, fraction: float) -> float:
    """Interpolate inside a bucket: linear in bucket 0, log-linear elsewhere."""
    lo, hi = bucket_bounds(index)
    if index == 0:
        return lo + (hi - lo) * fraction
    return lo * math.exp((math.log(hi) - math.log(lo)) * fraction)


class PredictionSettings(BaseModel):
    """``prediction:`` in ``config/sla.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: at_risk when now + this quantile of the remaining time passes the deadline
    quantile: float = Field(default=0.9, gt=0.5, lt=1.0)
    #: a lane level needs this many observations before it is trusted
    min_samples: int = Field(default=30, ge=1)
    #: without statistics, at_risk after this fraction of the window (null: never)
    fallback_fraction: float | None = Field(default=0.8, gt=0.0, le=1.0)
    rotate_every: Duration = timedelta(days=7)
    max_histograms: int = Field(default=50_000, ge=16)


@dataclass(frozen=True, slots=True)
class Lane:
    """warehouse x carrier x region; ``None`` means unknown (and ``*`` in fallbacks)."""

    warehouse: str | None
    carrier: str | None
    region: str | None

    def levels(self) -> tuple[str, ...]:
        """Keys from the most specific level to the global one, without repeats."""
        return _levels(self.warehouse, self.carrier, self.region)


@lru_cache(maxsize=65_536)
def _keys(metric: str, levels: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{metric}@{level}" for level in levels)


@lru_cache(maxsize=65_536)
def _levels(warehouse: str | None, carrier: str | None, region: str | None) -> tuple[str, ...]:
    w, c, r = warehouse or "*", carrier or "*", region or "*"
    return tuple(dict.fromkeys((f"{w}|{c}|{r}", f"*|{c}|{r}", f"*|{c}|*", "*|*|*")))


class LogHistogram:
    """Counts of durations in fixed log buckets, in two event-time generations."""

    __slots__ = ("epoch", "current", "previous", "_total", "_cached_total", "_cached", "_tails")

    def __init__(self) -> None:
        self.epoch = -1
        self.current: dict[int, int] = {}
        self.previous: dict[int, int] = {}
        self._total = 0
        # the sorted bucket indexes and counts the tail quantiles were last computed from
        self._cached_total = -1
        self._cached: tuple[list[int], list[int]] | None = None
        self._tails: list[float] | None = None

    @property
    def total(self) -> int:
        return self._total

    def observe(self, seconds: float, epoch: int) -> None:
        if epoch > self.epoch:
            self.previous = self.current if epoch == self.epoch + 1 else {}
            self.current = {}
            self.epoch = epoch
            self._total = sum(self.previous.values())
        elif epoch < self.epoch - 1:
            return  # older than both generations: no longer "recent"
        target = self.current if epoch == self.epoch else self.previous
        index = bucket_of(max(seconds, 0.0))
        target[index] = target.get(index, 0) + 1
        self._total += 1

    def _merged(self) -> tuple[list[int], list[int]]:
        merged = dict(self.previous)
        for index, count in self.current.items():
            merged[index] = merged.get(index, 0) + count
        indexes = sorted(merged)
        return indexes, [merged[i] for i in indexes]

    def _tables(self, q: float) -> tuple[list[int], list[int], list[float]]:
        """Sorted buckets and, per start bucket j, the q-quantile of durations in buckets >= j.

        Recomputed when the count moved by more than max(16, 1/16 of it), which keeps the
        per-event cost O(1) amortised. The counts used are saved with the histogram, so a
        restored histogram answers exactly like the original.
        """
        if self._cached is None or abs(self._total - self._cached_total) > max(16, self._cached_total // 16):
            self._cached = self._merged()
            self._cached_total = self._total
            self._tails = None
        if self._tails is None:
            self._tails = _tail_quantiles(self._cached[0], self._cached[1], q)
        return self._cached[0], self._cached[1], self._tails

    def quantile(self, q: float) -> float | None:
        indexes, counts = self._merged()
        if not indexes:
            return None
        return _tail_quantiles(indexes, counts, q)[0]

    def conditional_quantile(self, q: float, elapsed: float) -> float | None:
        """q-quantile of the total duration among durations longer than ``elapsed``."""
        indexes, counts = self._merged()
        start = 0
        while start < len(indexes) and bucket_bounds(indexes[start])[1] <= elapsed:
            start += 1
        if start == len(indexes):
            return None  # never seen anything take this long
        value = _tail_quantiles(indexes[start:], counts[start:], q)[0]
        return max(value, elapsed)

    def risk_offset(self, q: float, allowed: float) -> float | None:
        """Elapsed time after which the q-quantile of the total duration exceeds ``allowed``.

        The conditional quantile Q(T | T > e) never decreases in e, so the first start
        bucket whose tail quantile passes ``allowed`` gives the threshold: once everything
        below that bucket has been waited out, the deadline will probably be missed.
        ``None`` when that happens only at or after ``allowed`` (the breach comes first).
        """
        indexes, _counts, tails = self._tables(q)
        if not indexes:
            return None
        j = bisect_right(tails, allowed)  # tails is non-decreasing
        offset = 0.0 if j == 0 else bucket_bounds(indexes[j - 1])[1]
        return offset if offset < allowed else None

    @classmethod
    def merge(cls, hists: list[LogHistogram]) -> LogHistogram:
        """Sum of histograms (for example of several partitions), generations aligned."""
        out = cls()
        out.epoch = max((h.epoch for h in hists), default=-1)
        for h in hists:
            pairs: list[tuple[dict[int, int], dict[int, int]]]
            if h.epoch == out.epoch:
                pairs = [(out.current, h.current), (out.previous, h.previous)]
            elif h.epoch == out.epoch - 1:
                pairs = [(out.previous, h.current)]
            else:
                continue
            for target, source in pairs:
                for index, count in source.items():
                    target[index] = target.get(index, 0) + count
        out._total = sum(out.current.values()) + sum(out.previous.values())
        return out

    def to_dict(self) -> dict[str, Any]:
        cached = self._cached
        return {
            "epoch": self.epoch,
            "current": {str(k): v for k, v in self.current.items()},
            "previous": {str(k): v for k, v in self.previous.items()},
            "cached": None
            if cached is None
            else {"total": self._cached_total, "indexes": cached[0], "counts": cached[1]},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogHistogram:
        hist = cls()
        hist.epoch = int(data["epoch"])
        hist.current = {int(k): int(v) for k, v in data["current"].items()}
        hist.previous = {int(k): int(v) for k, v in data["previous"].items()}
        hist._total = sum(hist.current.values()) + sum(hist.previous.values())
        cached = data.get("cached")
        if cached is not None:
            hist._cached_total = int(cached["total"])
            hist._cached = (list(cached["indexes"]), list(cached["counts"]))
        return hist


def _tail_quantiles(indexes: list[int], counts: list[int], q: float) -> list[float]:
    """For each start position j, the q-quantile of the buckets from j on (two pointers)."""
    n = len(indexes)
    prefix = [0] * (n + 1)
    for i, c in enumerate(counts):
        prefix[i + 1] = prefix[i] + c
    total = prefix[n]
    out: list[float] = []
    k = 0
    for j in range(n):
        tail = total - prefix[j]
        need = q * tail  # observations of the tail at or below the quantile
        target = prefix[j] + need
        k = max(k, j)
        while k < n - 1 and prefix[k + 1] < target:
            k += 1
        inside = (target - prefix[k]) / counts[k]
        out.append(_value_in_bucket(indexes[k], min(max(inside, 0.0), 1.0)))
    return out


def _utc(instant: float) -> datetime:
    return datetime.fromtimestamp(instant, UTC)


class LaneStats:
    """Histograms keyed by metric and lane level, bounded and serialisable.

    Metrics: ``stage:<stage id>`` (stage start -> the event that ends or restarts it) and
    ``deliver:<status>`` (entering the status -> delivered).
    """

    def __init__(self, settings: PredictionSettings) -> None:
        self.settings = settings
        self._rotate = settings.rotate_every.total_seconds()
        self._hists: OrderedDict[str, LogHistogram] = OrderedDict()
        self._dirty: set[str] = set()  # histogram keys changed or evicted since take_dirty

    def __len__(self) -> int:
        return len(self._hists)

    def observe(self, lane: Lane, metric: str, seconds: float, at: float) -> None:
        epoch = int(at // self._rotate)
        hists = self._hists
        for key in _keys(metric, lane.levels()):
            hist = hists.get(key)
            if hist is None:
                hist = hists[key] = LogHistogram()
                if len(hists) > self.settings.max_histograms:
                    evicted, _ = hists.popitem(last=False)
                    self._dirty.add(evicted)
            else:
                hists.move_to_end(key)
            hist.observe(seconds, epoch)
            self._dirty.add(key)

    def histogram(self, lane: Lane, metric: str) -> LogHistogram | None:
        """The most specific level with at least ``min_samples`` observations."""
        for key in _keys(metric, lane.levels()):
            hist = self._hists.get(key)
            if hist is not None and hist.total >= self.settings.min_samples:
                return hist
        return None

    def risk_offset(self, lane: Lane, metric: str, allowed: float) -> float | None:
        hist = self.histogram(lane, metric)
        if hist is None:
            return None
        return hist.risk_offset(self.settings.quantile, allowed)

    def eta(
        self, lane: Lane, status: str, since: datetime, now: datetime | None = None
    ) -> tuple[datetime, datetime] | None:
        """Delivery window (p50, p90 of time to delivered) for a SKU in ``status`` since ``since``.

        With ``now``, the quantiles are conditional on the time already spent, so a SKU
        that has waited longer than usual gets a later window instead of one in the past.
        ``None`` when no lane level has enough observations.
        """
        return combined_eta([self], lane, status, since, now)

    def level_histogram(self, key: str) -> LogHistogram | None:
        return self._hists.get(key)

    def take_dirty(self) -> dict[str, dict[str, Any] | None]:
        """Histograms changed since the last call (``None``: evicted), for incremental saves."""
        out = {key: (h.to_dict() if (h := self._hists.get(key)) is not None else None) for key in sorted(self._dirty)}
        self._dirty = set()
        return out

    def restore(self, key: str, data: dict[str, Any]) -> None:
        self._hists[key] = LogHistogram.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {"histograms": {k: h.to_dict() for k, h in self._hists.items()}}

    @classmethod
    def from_dict(cls, settings: PredictionSettings, data: dict[str, Any]) -> LaneStats:
        stats = cls(settings)
        for key, value in data["histograms"].items():
            stats._hists[key] = LogHistogram.from_dict(value)
        return stats


def combined_eta(
    stats: list[LaneStats], lane: Lane, status: str, since: datetime, now: datetime | None = None
) -> tuple[datetime, datetime] | None:
    """ETA window from the merged statistics of several partitions (see :meth:`LaneStats.eta`)."""
    if status == "delivered":
        return since, since
    if not stats:
        return None
    settings = stats[0].settings
    hist: LogHistogram | None = None
    for level in lane.levels():
        key = f"deliver:{status}@{level}"
        merged = LogHistogram.merge([h for s in stats if (h := s.level_histogram(key)) is not None])
        if merged.total >= settings.min_samples:
            hist = merged
            break
    if hist is None:
        return None
    start = since.timestamp()
    elapsed = 0.0 if now is None else max(0.0, now.timestamp() - start)
    p50 = hist.conditional_quantile(0.5, elapsed)
    p90 = hist.conditional_quantile(settings.quantile, elapsed)
    if p50 is None or p90 is None:
        return None
    return _utc(start + p50), _utc(start + max(p50, p90))
