"""History charts from InfluxDB: throughput, delay rate by region / carrier / warehouse, and
dwell time per node as a heatmap, over a chosen time range (refreshed every minute).

The range ends where the live KPIs are: at the worker's event-time watermark (the KPIs'
``at``) when that is behind the wall clock, e.g. while a backlog or an import of older
orders is worked through, so KPIs, map and history describe the same moment; the panel
says which event-time range it shows.

Queries go through ``deps.history`` (``dashboard.warroom.history``); when InfluxDB cannot
answer, each chart says so instead of the page failing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go
from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html

from dashboard.warroom import charts, ids, live, theme
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.history import DIMENSIONS, Dimension, HistoryError, TimeWindow
from dashboard.warroom.i18n import DEFAULT_LANGUAGE, label, normalise
from dashboard.warroom.localtime import zone
from dashboard.warroom.widgets import clientside, panel, segmented, text, unavailable_text

RANGES: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
DEFAULT_RANGE = "1h"
REFRESH_MS = 60_000


def layout(deps: WarroomDeps) -> html.Section:
    tools = [
        html.Span(text("history.range", "history"), className="muted"),
        segmented(ids.HISTORY_RANGE, DEFAULT_RANGE, RANGES, "history.range", "history-range"),
        html.Span(text("history.by", "history"), className="muted"),
        segmented(ids.HISTORY_DELAY_BY, "region", DIMENSIONS, "history.by", "history-by"),
        html.Button(text("history.refresh", "history"), id=ids.HISTORY_REFRESH, className="btn btn-ghost"),
    ]
    blank = theme.empty_figure(label(DEFAULT_LANGUAGE, "history.no_data"))
    graph = {"config": {"displaylogo": False}, "figure": blank}
    return panel(
        "history.title",
        "history",
        html.Div(
            [dcc.Graph(id=ids.HISTORY_THROUGHPUT, **graph), dcc.Graph(id=ids.HISTORY_DELAY, **graph)],
            className="grid-2",
        ),
        html.Div(id=ids.HISTORY_WINDOW, className="muted small history-window"),
        dcc.Graph(id=ids.HISTORY_DWELL, **graph),
        dcc.Interval(id=ids.HISTORY_TICK, interval=REFRESH_MS),
        dcc.Store(id=ids.HISTORY_ANCHOR),
        extra=tools,
        class_name="panel-history",
    )


def window_of(span: timedelta, now: datetime, live_at: datetime | None) -> TimeWindow:
    """``span`` up to the live KPIs' time (the minute it is in, included), never past ``now``."""
    end = now if live_at is None else min(now, live_at.replace(second=0, microsecond=0) + timedelta(minutes=1))
    return TimeWindow.last(span, end)


def window_text(window: TimeWindow, lang: str, tz: str) -> str:
    start, end = (t.astimezone(zone(tz)) for t in (window.start, window.end))
    fmt = "%H:%M" if start.date() == end.date() else "%m-%d %H:%M"
    return label(lang, "history.window", start=start.strftime(fmt), end=end.strftime(fmt))


def history_figures(
    deps: WarroomDeps, range_key: str, by: Dimension, lang: str, tz: str = "UTC", window: TimeWindow | None = None
) -> tuple[Any, Any, Any]:
    if window is None:
        window = TimeWindow.last(RANGES.get(range_key, RANGES[DEFAULT_RANGE]), deps.clock())
    names = {code: area.name(lang) for code, area in deps.basemap.province_areas.items()}
    out = []
    builders: list[Callable[[], go.Figure]] = [
        lambda: charts.throughput_figure(deps.history.throughput(window), lang, tz),
        lambda: charts.delay_rate_figure(
            deps.history.delay_rate(window, by), by, lang, names if by == "region" else None, tz=tz
        ),
        lambda: charts.dwell_heatmap(deps.history.dwell(window), lang, tz=tz),
    ]
    for build in builders:
        try:
            out.append(build())
        except HistoryError as exc:
            out.append(theme.empty_figure(unavailable_text(lang, exc)))
    return out[0], out[1], out[2]


def register(app: Dash, deps: WarroomDeps) -> None:
    # The charts follow the KPIs' minute (assets/warroom_views.js: anchor, in the browser):
    # redrawn when it moves (or on the first KPIs after a page load), not on every live update.
    clientside(
        app,
        ClientsideFunction("warroom_views", "anchor"),
        Output(ids.HISTORY_ANCHOR, "data"),
        Input(ids.live_store(live.KPIS), "data"),
        State(ids.HISTORY_ANCHOR, "data"),
    )

    @app.callback(
        Output(ids.HISTORY_THROUGHPUT, "figure"),
        Output(ids.HISTORY_DELAY, "figure"),
        Output(ids.HISTORY_DWELL, "figure"),
        Output(ids.HISTORY_WINDOW, "children"),
        Input(ids.HISTORY_RANGE, "value"),
        Input(ids.HISTORY_DELAY_BY, "value"),
        Input(ids.HISTORY_REFRESH, "n_clicks"),
        Input(ids.HISTORY_TICK, "n_intervals"),
        Input(ids.LANG, "data"),
        Input(ids.TIMEZONE, "data"),
        Input(ids.HISTORY_ANCHOR, "data"),
    )
    def refresh(
        range_key: str, by: str, _clicks: Any, _ticks: Any, lang: str | None, tz: str | None, anchor: str | None
    ) -> tuple[Any, Any, Any, str]:
        dimension: Dimension = next((d for d in DIMENSIONS if d == by), "region")
        lang, tz = normalise(lang), tz or "UTC"
        window = window_of(RANGES.get(range_key, RANGES[DEFAULT_RANGE]), deps.clock(), live.parse_time(anchor))
        return (*history_figures(deps, range_key, dimension, lang, tz, window), window_text(window, lang, tz))
