"""KPI trends: a bounded series of KPI samples kept in the browser (a ``dcc.Store``). Pure.

A trend starts from history where InfluxDB has it (SKUs in flight, per minute) and grows
with the live KPIs, one sample at most every :data:`MIN_STEP_S` seconds of KPI time, so a
busy feed does not turn the trend into a one-minute window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

#: Samples kept per trend (4 h at one a minute, or less at a faster live pace).
MAX_SAMPLES = 240
MIN_STEP_S = 15.0

Trend = dict[str, Any]  # {"t": [iso...], "v": {kpi: [number | None, ...]}}


def empty() -> Trend:
    return {"t": [], "v": {}}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def seeded(times: Sequence[datetime], values: Mapping[str, Sequence[float | None]]) -> Trend:
    """A trend from history: one time per sample, a value list per KPI (same length)."""
    trend = empty()
    trend["t"] = [t.isoformat() for t in times][-MAX_SAMPLES:]
    trend["v"] = {k: list(v)[-MAX_SAMPLES:] for k, v in values.items()}
    return trend


def appended(trend: Trend | None, at: datetime, sample: Mapping[str, float | None]) -> Trend | None:
    """The trend with ``sample`` at ``at`` added; ``None`` when nothing changes (too soon
    after the last sample, or the same values again)."""
    current: Trend = trend if trend and "t" in trend else empty()
    times: list[str] = list(current["t"])
    values: dict[str, list[float | None]] = {k: list(v) for k, v in current.get("v", {}).items()}
    if times:
        last = _time(times[-1])
        if at - last < timedelta(seconds=MIN_STEP_S):
            # Too soon for a new point: refresh the newest one (the live value moved on).
            changed = any(values.get(k, [None])[-1] != v for k, v in sample.items())
            if not changed:
                return None
            for key, value in sample.items():
                series = values.setdefault(key, [None] * len(times))
                series[-1] = value
            return {"t": times, "v": values}
    for key in set(values) | set(sample):
        series = values.setdefault(key, [None] * len(times))
        series.append(sample.get(key))
    times.append(at.isoformat())
    if len(times) > MAX_SAMPLES:
        times = times[-MAX_SAMPLES:]
        values = {k: v[-MAX_SAMPLES:] for k, v in values.items()}
    return {"t": times, "v": values}


def series(trend: Trend | None, key: str) -> list[float | None]:
    return list((trend or {}).get("v", {}).get(key, []))


def recent(trend: Trend | None, key: str) -> list[float | None]:
    """The series from its first known value on (a KPI first reported late starts there)."""
    values = series(trend, key)
    first = next((i for i, v in enumerate(values) if v is not None), len(values))
    return values[first:]


def change_since(trend: Trend | None, key: str, minutes: float) -> float | None:
    """Newest value minus the value ``minutes`` earlier (the sample at or before then)."""
    if not trend or not trend.get("t"):
        return None
    times = [_time(t) for t in trend["t"]]
    values = series(trend, key)
    if len(values) != len(times) or values[-1] is None:
        return None
    cutoff = times[-1] - timedelta(minutes=minutes)
    earlier = [v for t, v in zip(times, values, strict=True) if t <= cutoff and v is not None]
    if not earlier:
        return None
    return float(values[-1]) - float(earlier[-1])
