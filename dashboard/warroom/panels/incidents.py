"""Incidents: root cause, affected orders, trend, tier and owner, worst first. Selecting
one highlights it on the map and lists its orders (which open in the order lookup)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import ALL, Dash, Input, Output, callback_context, dcc, html, no_update

from dashboard.warroom import charts, ids, live, titles
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.i18n import label, normalise
from dashboard.warroom.localtime import local_text
from dashboard.warroom.widgets import muted, panel, tier_chip

_BARS = "▁▂▃▄▅▆▇█"
_ARROWS = {"up": "↑", "down": "↓", "flat": "→"}


def spark_text(values: Sequence[int]) -> str:
    """A trend as block characters (cheap to send, readable in a table cell), scaled from
    the series' low to its high: a steady count is a flat low line, not a solid block."""
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return _BARS[0] * len(values)
    top = len(_BARS) - 1
    return "".join(_BARS[round((v - low) / (high - low) * top)] for v in values)


def layout(deps: WarroomDeps) -> html.Section:
    return panel(
        "incidents.title",
        "incidents",
        html.Div(id=ids.INCIDENT_TABLE, className="incident-list"),
        html.Div(id=ids.INCIDENT_DETAIL, className="incident-detail"),
        dcc.Store(id=ids.INCIDENT_SELECTED),
        class_name="panel-incidents",
    )


def incident_row(incident: live.Incident, selected: bool, lang: str) -> html.Div:
    owner = incident.owner or label(lang, "incidents.unowned")
    return html.Div(
        [
            tier_chip(incident.tier),
            html.Div(
                [
                    html.Div(incident.title, className="incident-cause", title=incident.title),
                    html.Div(titles.kind_state(incident, lang), className="muted small"),
                ],
                className="incident-main",
            ),
            html.Div(
                [
                    html.Div(titles.size(incident, lang)[0], className="incident-count"),
                    muted(titles.size(incident, lang)[1]),
                ],
                className="incident-num",
            ),
            html.Div(
                [
                    html.Span(spark_text(incident.trend), className="spark-text"),
                    html.Span(_ARROWS.get(incident.direction, ""), className=f"trend-{incident.direction}"),
                ],
                className="incident-trend",
            ),
            html.Div(owner, className="incident-owner" + ("" if incident.owner else " muted"), title=owner),
        ],
        id=ids.incident_row(incident.incident_id),
        n_clicks=0,
        className="incident-row" + (" selected" if selected else "") + ("" if incident.open else " resolved"),
    )


def incident_detail(incident: live.Incident | None, lang: str, tz: str = "UTC") -> list[Any]:
    if incident is None:
        return [muted(label(lang, "incidents.select_hint"))]
    facts = [
        (label(lang, "incidents.root_cause"), incident.root_cause),
        (label(lang, "incidents.tier"), incident.tier),
        (label(lang, "incidents.owner"), incident.owner or label(lang, "incidents.unowned")),
        (label(lang, "incidents.state"), titles.kind_state(incident, lang)),
        titles.size_detail(incident, lang),
        (label(lang, "incidents.since"), local_text(incident.opened_at, tz, seconds=True)),
    ]
    orders = [html.A(o, id=ids.order_link(o, "incident"), className="order-link chip") for o in incident.sample_orders]
    return [
        html.H3(incident.title, className="detail-title"),
        html.Dl([item for name, value in facts for item in (html.Dt(name), html.Dd(value))], className="facts"),
        dcc.Graph(
            figure=charts.incident_trend(incident, lang),
            config={"displayModeBar": False},
            className="incident-trend-graph",
            id=ids.INCIDENT_TREND,
        ),
        html.H4(label(lang, "incidents.orders")),
        html.Div(orders or muted("–"), className="order-chips"),
    ]


def register(app: Dash, deps: WarroomDeps) -> None:
    @app.callback(
        Output(ids.INCIDENT_TABLE, "children"),
        Input(ids.live_store(live.INCIDENT), "data"),
        Input(ids.live_store(live.ALERT), "data"),
        Input(ids.INCIDENT_SELECTED, "data"),
        Input(ids.LANG, "data"),
    )
    def show_list(incident_store: Any, alert_store: Any, selected: str | None, lang: str | None) -> Any:
        lang = normalise(lang)
        found = titles.named(live.incidents(incident_store, alert_store), deps.places, lang)
        if not found:
            return muted(label(lang, "incidents.none"))
        return [incident_row(i, i.incident_id == selected, lang) for i in found]

    @app.callback(
        Output(ids.INCIDENT_SELECTED, "data", allow_duplicate=True),
        Input(ids.incident_row(ALL), "n_clicks"),
        prevent_initial_call=True,
    )
    def select(clicks: list[int | None]) -> Any:
        fired = callback_context.triggered[0] if callback_context.triggered else None
        if not fired or not fired.get("value"):
            return no_update  # rows re-rendered by a live update, not clicked
        return callback_context.triggered_id["incident"]

    @app.callback(
        Output(ids.INCIDENT_DETAIL, "children"),
        Input(ids.INCIDENT_SELECTED, "data"),
        Input(ids.live_store(live.INCIDENT), "data"),
        Input(ids.live_store(live.ALERT), "data"),
        Input(ids.LANG, "data"),
        Input(ids.TIMEZONE, "data"),
    )
    def show_detail(
        selected: str | None, incident_store: Any, alert_store: Any, lang: str | None, tz: str | None
    ) -> Any:
        lang = normalise(lang)
        found = {i.incident_id: i for i in titles.named(live.incidents(incident_store, alert_store), deps.places, lang)}
        return incident_detail(found.get(selected or ""), lang, tz or "UTC")
