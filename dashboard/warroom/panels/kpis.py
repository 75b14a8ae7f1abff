"""KPI strip: SKUs and orders in flight, on-time rate, at risk, late, stalled, ETA slips
(orders whose ETA window ends after their promise), open incidents and alerts by tier; each
with its trend line and its change over the last :data:`DELTA_MINUTES` minutes.

The numbers, trends and changes are computed in the browser from the live stores
(``assets/warroom_views.js``: ``kpis``); the server only seeds the SKUs-in-flight trend from
InfluxDB when the page loads.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html, no_update

from dashboard.warroom import charts, ids, live, theme, trends
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.history import HistoryError, TimeWindow
from dashboard.warroom.widgets import clientside, text

#: (key, higher is worse, formatted as a rate)
KPIS: tuple[tuple[str, bool | None, bool], ...] = (
    ("skus_in_flight", None, False),
    ("orders_in_flight", None, False),
    ("on_time_rate", False, True),
    ("at_risk", True, False),
    ("late", True, False),
    ("stalled", True, False),
    ("eta_slips", True, False),
    ("open_incidents", True, False),
    ("open_alerts", True, False),
)
DELTA_MINUTES = 10
#: History used to start the SKUs-in-flight trend.
SEED_SPAN = timedelta(hours=2)
_COLOURS = {
    "on_time_rate": "#34c38f",
    "at_risk": "#ffd166",
    "late": "#ff9f43",
    "stalled": "#ff4d4f",
    "open_incidents": "#e05dd3",
    "open_alerts": "#ff6b6b",
}


def _card(key: str) -> html.Div:
    return html.Div(
        [
            html.Div(text(f"kpi.{key}", "kpi"), className="kpi-label"),
            html.Div(
                [
                    html.Span("–", id=ids.kpi_value(key), className="kpi-value"),
                    html.Span(id=ids.kpi_delta(key), className="kpi-delta"),
                ],
                className="kpi-main",
            ),
            html.Div(id=ids.kpi_detail(key), className="kpi-detail"),
            dcc.Graph(
                id=ids.kpi_spark(key),
                figure=charts.sparkline([], _COLOURS.get(key, theme.ACCENT)),
                config={"displayModeBar": False, "staticPlot": True},
                className="kpi-spark",
            ),
        ],
        className="kpi-card",
        id=ids.kpi_card(key),
    )


def layout(deps: WarroomDeps) -> html.Div:
    return html.Div(
        [*(_card(key) for key, _, _ in KPIS), dcc.Store(id=ids.KPI_HISTORY), dcc.Store(id=ids.KPI_SPEC, data=spec())],
        className="kpi-strip",
        id=ids.KPI_STRIP,
    )


def spec() -> dict[str, Any]:
    """What the browser's KPI callback (``assets/warroom_views.js``) needs: the cards (key,
    whether up is worse), the change window and the trend's bounds (``trends``)."""
    return {
        "cards": [{"key": key, "worse_up": worse_up} for key, worse_up, _ in KPIS],
        "delta_minutes": DELTA_MINUTES,
        "max_samples": trends.MAX_SAMPLES,
        "min_step_s": trends.MIN_STEP_S,
    }


def register(app: Dash, deps: WarroomDeps) -> None:
    keys = [key for key, _, _ in KPIS]

    # The trend starts from history (the server reads InfluxDB once per page load) ...
    @app.callback(
        Output(ids.KPI_HISTORY, "data", allow_duplicate=True),
        Input(ids.KPI_STRIP, "id"),
        State(ids.KPI_HISTORY, "data"),
        prevent_initial_call="initial_duplicate",
    )
    def seed(_strip: str, trend: Any) -> Any:
        return _seed(deps, deps.clock()) if not trend else no_update

    # ... and every live update is drawn in the browser: values, changes, sparklines (their
    # y only; the figure's style is charts.sparkline) and the tier breakdowns.
    outputs = [Output(ids.kpi_value(k), "children") for k in keys]
    outputs += [Output(ids.kpi_delta(k), "children") for k in keys]
    outputs += [Output(ids.kpi_delta(k), "className") for k in keys]
    outputs += [Output(ids.kpi_spark(k), "figure") for k in keys]
    outputs += [
        Output(ids.kpi_detail("open_incidents"), "children"),
        Output(ids.kpi_detail("open_alerts"), "children"),
        Output(ids.KPI_HISTORY, "data", allow_duplicate=True),
    ]
    clientside(
        app,
        ClientsideFunction("warroom_views", "kpis"),
        *outputs,
        Input(ids.live_store(live.KPIS), "data"),
        Input(ids.live_store(live.INCIDENT), "data"),
        Input(ids.live_store(live.ALERT), "data"),
        Input(ids.live_store(live.PARTITIONS), "data"),
        Input(ids.LANG, "data"),
        State(ids.KPI_HISTORY, "data"),
        State(ids.KPI_SPEC, "data"),
        State(ids.I18N_TABLE, "data"),
        prevent_initial_call="initial_duplicate",
    )


def _seed(deps: WarroomDeps, now: Any) -> trends.Trend:
    """The SKUs-in-flight trend of the last hours from InfluxDB (empty when unavailable)."""
    try:
        frame = deps.history.inflight(TimeWindow.last(SEED_SPAN, now))
    except HistoryError:
        return trends.empty()
    if frame.empty:
        return trends.empty()
    times = [t.to_pydatetime() for t in frame["time"]]
    return trends.seeded(times, {"skus_in_flight": [float(v) for v in frame["skus"]]})
