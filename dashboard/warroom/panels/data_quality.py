"""Data quality: the missing-scan rate per source, node or device, and the deliveries whose
GPS fix was far from the stop per courier or station, over a chosen range (refreshed every
minute). "All" covers imported history whatever its dates.

Queries go through ``deps.history`` (:mod:`dashboard.warroom.quality_history`); when InfluxDB
cannot answer, the panel says so instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import pandas as pd
from dash import Dash, Input, Output, dcc, html

from dashboard.warroom import ids
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.history import HistoryError, TimeWindow
from dashboard.warroom.i18n import label, normalise
from dashboard.warroom.quality_history import (
    SCAN_DIMENSIONS,
    STOP_DIMENSIONS,
    TOP,
    QuerySource,
    ScanDimension,
    StopDimension,
    deliveries_away,
    missing_scans,
)
from dashboard.warroom.widgets import muted, panel, segmented, text, unavailable_text

RANGE = "dq-range"
SCANS_BY = "dq-scans-by"
STOPS_BY = "dq-stops-by"
TICK = "dq-tick"
SCANS_TABLE = "dq-scans"
STOPS_TABLE = "dq-stops"

RANGES: dict[str, timedelta | None] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
DEFAULT_RANGE = "24h"
REFRESH_MS = 60_000


def layout(deps: WarroomDeps) -> html.Section:
    tools = [
        segmented(RANGE, DEFAULT_RANGE, RANGES, "dq.range", "dq-range"),
    ]
    scans = html.Div(
        [
            html.H3(text("dq.missing_scans", "dq")),
            segmented(SCANS_BY, "source", SCAN_DIMENSIONS, "dq.by", "dq-scans-by"),
            html.Div(id=SCANS_TABLE),
        ]
    )
    stops = html.Div(
        [
            html.H3(text("dq.away", "dq")),
            segmented(STOPS_BY, "courier", STOP_DIMENSIONS, "dq.by", "dq-stops-by"),
            html.Div(id=STOPS_TABLE),
        ]
    )
    return panel(
        "dq.title",
        "dq",
        html.Div([scans, stops], className="grid-2"),
        dcc.Interval(id=TICK, interval=REFRESH_MS),
        extra=tools,
        class_name="panel-data-quality",
    )


def _percent(value: float) -> str:
    return f"{value:.1%}"


def table(frame: pd.DataFrame, columns: list[tuple[str, str]], lang: str) -> html.Table | html.Span:
    """The first :data:`TOP` rows of ``frame`` as a table (``columns``: (column, label key))."""
    if frame.empty:
        return muted(label(lang, "history.no_data"))
    head = html.Tr([html.Th(label(lang, key)) for _, key in columns])
    rows = []
    for record in frame.head(TOP).to_dict("records"):
        cells = []
        for column, _ in columns:
            value = record[column]
            if column.endswith("rate"):
                cells.append(html.Td(_percent(float(value)), className="num"))
            elif isinstance(value, float):
                cells.append(html.Td(f"{int(value):,}", className="num"))
            else:
                cells.append(html.Td(str(value)))
        rows.append(html.Tr(cells))
    return html.Table([html.Thead(head), html.Tbody(rows)], className="table table-compact")


def tables(
    deps: WarroomDeps, range_key: str, scans_by: ScanDimension, stops_by: StopDimension, lang: str
) -> tuple[Any, Any]:
    span = RANGES.get(range_key, RANGES[DEFAULT_RANGE])
    window = TimeWindow.last(span, deps.clock()) if span is not None else None
    source = cast(QuerySource, deps.history)
    # (query, its value columns and their label keys) of each table, beside the grouping column
    wanted: list[tuple[Callable[[], pd.DataFrame], str, list[tuple[str, str]]]] = [
        (
            lambda: missing_scans(source, window, scans_by),
            scans_by,
            [("missing", "dq.missing"), ("scans", "dq.scans"), ("rate", "dq.rate")],
        ),
        (
            lambda: deliveries_away(source, window, stops_by),
            stops_by,
            [("away", "dq.away_count"), ("delivered", "dq.delivered"), ("away_rate", "dq.rate")],
        ),
    ]
    out: list[Any] = []
    for query, by, columns in wanted:
        try:
            out.append(table(query(), [(by, f"dq.by.{by}"), *columns], lang))
        except HistoryError as exc:
            out.append(muted(unavailable_text(lang, exc)))
    return out[0], out[1]


def register(app: Dash, deps: WarroomDeps) -> None:
    @app.callback(
        Output(SCANS_TABLE, "children"),
        Output(STOPS_TABLE, "children"),
        Input(RANGE, "value"),
        Input(SCANS_BY, "value"),
        Input(STOPS_BY, "value"),
        Input(TICK, "n_intervals"),
        Input(ids.LANG, "data"),
    )
    def refresh(range_key: str, scans_by: str, stops_by: str, _ticks: Any, lang: str | None) -> tuple[Any, Any]:
        scan_dimension: ScanDimension = next((d for d in SCAN_DIMENSIONS if d == scans_by), "source")
        stop_dimension: StopDimension = next((d for d in STOP_DIMENSIONS if d == stops_by), "courier")
        return tables(deps, range_key, scan_dimension, stop_dimension, normalise(lang))
