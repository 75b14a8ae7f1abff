"""KPI trends: a bounded series of KPI samples kept in the browser (a ``dcc.Store``). Pure.

A trend starts from history where InfluxDB has it (SKUs in flight, per minute: :func:`seeded`,
once per page load) and grows in the browser with the live KPIs (``assets/warroom_views.js``:
``appended``), one sample at most every :data:`MIN_STEP_S` seconds of KPI time, so a busy
feed does not turn the trend into a one-minute window. The bounds reach the browser through
``panels.kpis.spec``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

#: Samples kept per trend (4 h at one a minute, or less at a faster live pace).
MAX_SAMPLES = 240
MIN_STEP_S = 15.0

Trend = dict[str, Any]  # {"t": [iso...], "v": {kpi: [number | None, ...]}}


def empty() -> Trend:
    return {"t": [], "v": {}}


def seeded(times: Sequence[datetime], values: Mapping[str, Sequence[float | None]]) -> Trend:
    """A trend from history: one time per sample, a value list per KPI (same length)."""
    trend = empty()
    trend["t"] = [t.isoformat() for t in times][-MAX_SAMPLES:]
    trend["v"] = {k: list(v)[-MAX_SAMPLES:] for k, v in values.items()}
    return trend
