"""KPI strip: SKUs and orders in flight, on-time rate, at risk, late, stalled, ETA slips
(orders whose ETA window ends after their promise), open incidents and alerts by tier; each with its trend line and its change over the last
:data:`DELTA_MINUTES` minutes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dash import Dash, Input, Output, Patch, State, dcc, html, no_update

from dashboard.warroom import figures, ids, live, trends
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.history import HistoryError, TimeWindow
from dashboard.warroom.i18n import label, normalise
from dashboard.warroom.widgets import text

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
_COLOURS = {"on_time_rate": "#34c38f", "at_risk": "#ffd166", "late": "#ff9f43", "stalled": "#ff4d4f",
            "open_incidents": "#e05dd3", "open_alerts": "#ff6b6b"}


def _card(key: str) -> html.Div:
    return html.Div([
        html.Div(text(f"kpi.{key}", "kpi"), className="kpi-label"),
        html.Div([html.Span("–", id=ids.kpi_value(key), className="kpi-value"),
                  html.Span(id=ids.kpi_delta(key), className="kpi-delta")], className="kpi-main"),
        html.Div(id=ids.kpi_detail(key), className="kpi-detail"),
        dcc.Graph(id=ids.kpi_spark(key), figure=figures.sparkline([], _COLOURS.get(key, figures.ACCENT)),
                  config={"displayModeBar": False, "staticPlot": True}, className="kpi-spark"),
    ], className="kpi-card", id=ids.kpi_card(key))


def layout(deps: WarroomDeps) -> html.Div:
    return html.Div([*(_card(key) for key, _, _ in KPIS), dcc.Store(id=ids.KPI_HISTORY)],
                    className="kpi-strip", id=ids.KPI_STRIP)


def format_value(key: str, value: float | None, lang: str) -> str:
    if value is None:
        return "–"
    if key == "on_time_rate":
        return f"{value * 100:.1f}%"
    return f"{int(value):,}"


def format_delta(key: str, change: float | None, worse_up: bool | None, lang: str) -> tuple[str, str]:
    """Text and CSS class of a KPI's change (red when it moved the bad way)."""
    if change is None or change == 0:
        return "", "kpi-delta"
    arrow = "▲" if change > 0 else "▼"
    amount = f"{abs(change) * 100:.1f} pt" if key == "on_time_rate" else f"{abs(int(change)):,}"
    tone = "neutral" if worse_up is None else "bad" if (change > 0) == worse_up else "good"
    return f"{arrow} {amount} {label(lang, 'kpi.vs_earlier', minutes=DELTA_MINUTES)}", f"kpi-delta kpi-{tone}"


def tier_breakdown(counts: dict[str, int]) -> list[html.Span]:
    return [html.Span(f"{tier} {counts.get(tier, 0)}", className=f"tier tier-{tier.lower()}") for tier in live.TIERS]


def register(app: Dash, deps: WarroomDeps) -> None:
    keys = [key for key, _, _ in KPIS]

    @app.callback(Output(ids.KPI_HISTORY, "data"),
                  Input(ids.live_store(live.KPIS), "data"), Input(ids.live_store(live.INCIDENT), "data"),
                  Input(ids.live_store(live.ALERT), "data"), Input(ids.live_store(live.PARTITIONS), "data"),
                  State(ids.KPI_HISTORY, "data"))
    def record(kpi_store: Any, incident_store: Any, alert_store: Any, partition_store: Any, trend: Any) -> Any:
        now = deps.clock()
        seeded_now = not trend
        if seeded_now:
            trend = _seed(deps, now)
        if not any(live.items(s) for s in (kpi_store, incident_store, alert_store, partition_store)):
            return trend if seeded_now else no_update
        current = live.kpis(kpi_store, incident_store, alert_store, partition_store)
        updated = trends.appended(trend, live.parse_time(current.at) or now, current.sample())
        if updated is not None:
            return updated
        return trend if seeded_now else no_update

    outputs = [Output(ids.kpi_value(k), "children") for k in keys]
    outputs += [Output(ids.kpi_delta(k), "children") for k in keys]
    outputs += [Output(ids.kpi_delta(k), "className") for k in keys]
    outputs += [Output(ids.kpi_spark(k), "figure") for k in keys]
    outputs += [Output(ids.kpi_detail("open_incidents"), "children"), Output(ids.kpi_detail("open_alerts"), "children")]

    @app.callback(*outputs, Input(ids.KPI_HISTORY, "data"), Input(ids.live_store(live.KPIS), "data"),
                  Input(ids.live_store(live.INCIDENT), "data"), Input(ids.live_store(live.ALERT), "data"),
                  Input(ids.live_store(live.PARTITIONS), "data"), Input(ids.LANG, "data"))
    def render(trend: Any, kpi_store: Any, incident_store: Any, alert_store: Any, partition_store: Any,
               lang: str | None) -> list[Any]:
        lang = normalise(lang)
        k = live.kpis(kpi_store, incident_store, alert_store, partition_store)
        current = k.sample()
        values, deltas, classes, sparks = [], [], [], []
        for key, worse_up, _ in KPIS:
            values.append(format_value(key, current.get(key), lang))
            delta_text, delta_class = format_delta(key, trends.change_since(trend, key, DELTA_MINUTES), worse_up, lang)
            deltas.append(delta_text)
            classes.append(delta_class)
            spark = Patch()
            spark["data"][0]["y"] = trends.recent(trend, key)
            sparks.append(spark)
        return [*values, *deltas, *classes, *sparks, tier_breakdown(k.incidents_by_tier),
                tier_breakdown(k.alerts_by_tier)]


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
