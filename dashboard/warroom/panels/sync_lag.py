"""Sync lag per source: how late each source tells us what happened (arrival minus event
time: the highest per-partition, per-minute p50 and p99 over the last :data:`SPAN`, and the
records counted), from the worker's ``sync_lag`` series (:mod:`stream.core.sync_lag`). Sources whose median lag is above
the industry's 11.6-minute average status-sync lag are marked. Refreshed every minute;
when InfluxDB cannot answer, the panel says so.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pandas as pd
from dash import Dash, Input, Output, dcc, html

from dashboard.warroom import ids
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.history import HistoryError, TimeWindow
from dashboard.warroom.i18n import label, normalise
from dashboard.warroom.quality_history import QuerySource
from dashboard.warroom.widgets import muted, panel, unavailable_text

SYNC_LAG = "sync_lag"
SPAN = timedelta(minutes=15)
#: Industry average status-sync lag (seconds): the benchmark the panel marks against.
INDUSTRY_AVERAGE_S = 11.6 * 60
TICK = "sync-lag-tick"
TABLE = "sync-lag-table"
REFRESH_MS = 60_000
COLUMNS = ["source", "p50_s", "p99_s", "count"]


def query(window: TimeWindow) -> str:
    return (
        f'SELECT max("p50_s") AS "p50_s", max("p99_s") AS "p99_s", sum("count") AS "count" '
        f'FROM "{SYNC_LAG}" WHERE {window.where()} GROUP BY "source"'
    )


def lag_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """``source, p50_s, p99_s, count``, slowest (p50) first."""
    if raw.empty or "p50_s" not in raw or "source" not in raw:
        return pd.DataFrame({c: [] for c in COLUMNS})
    out = raw[COLUMNS].dropna(subset=["p50_s"])
    return out.sort_values(["p50_s", "source"], ascending=[False, True], ignore_index=True)


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def table(frame: pd.DataFrame, lang: str) -> html.Table | html.Span:
    if frame.empty:
        return muted(label(lang, "history.no_data"))
    head = html.Tr([html.Th(label(lang, f"sync_lag.{c}")) for c in COLUMNS])
    rows = []
    for record in frame.to_dict("records"):
        slow = float(record["p50_s"]) > INDUSTRY_AVERAGE_S
        rows.append(
            html.Tr(
                [
                    html.Td(str(record["source"])),
                    html.Td(duration(float(record["p50_s"])), className="num kpi-bad" if slow else "num"),
                    html.Td(duration(float(record["p99_s"])), className="num"),
                    html.Td(f"{int(record['count']):,}", className="num"),
                ]
            )
        )
    return html.Table([html.Thead(head), html.Tbody(rows)], className="table table-compact")


def content(deps: WarroomDeps, lang: str) -> Any:
    try:
        raw = cast(QuerySource, deps.history).query(query(TimeWindow.last(SPAN, deps.clock())))
    except HistoryError as exc:
        return muted(unavailable_text(lang, exc))
    return html.Div(
        [table(lag_frame(raw), lang), muted(label(lang, "sync_lag.benchmark", minutes=INDUSTRY_AVERAGE_S / 60))]
    )


def layout(deps: WarroomDeps) -> html.Section:
    return panel(
        "sync_lag.title",
        "sync-lag",
        html.Div(id=TABLE),
        dcc.Interval(id=TICK, interval=REFRESH_MS),
        class_name="panel-sync-lag",
    )


def register(app: Dash, deps: WarroomDeps) -> None:
    @app.callback(Output(TABLE, "children"), Input(TICK, "n_intervals"), Input(ids.LANG, "data"))
    def refresh(_ticks: Any, lang: str | None) -> Any:
        return content(deps, normalise(lang))
