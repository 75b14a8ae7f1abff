"""Order lookup: the timeline of one order's atomic events per SKU (accepted, late and
rejected), a summary, and its route on the map.

The browser fetches ``GET /api/v1/orders/{order_id}`` with the staff session
(``assets/warroom_actions.js``); this panel's server callback merges that snapshot with the
order's ``sku_events`` from history and builds the figures. Any order id shown elsewhere
(incident orders, orders in a hexagon) is a link that opens it here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
from dash import ALL, ClientsideFunction, Dash, Input, Output, State, callback_context, dcc, html, no_update

from dashboard.warroom import charts, ids, lineage, theme
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.history import HistoryError, TimeWindow
from dashboard.warroom.i18n import DEFAULT_LANGUAGE, label, normalise
from dashboard.warroom.live import as_dict
from dashboard.warroom.widgets import clientside, muted, panel, text

#: How far back the order's events are read from history.
LINEAGE_SPAN = timedelta(days=3)


def layout(deps: WarroomDeps) -> html.Section:
    search = html.Div(
        [
            dcc.Input(
                id=ids.ORDER_INPUT,
                type="text",
                placeholder=label(DEFAULT_LANGUAGE, "order.placeholder"),
                debounce=False,
                className="input",
                autoComplete="off",
            ),
            html.Button(text("order.search", "order"), id=ids.ORDER_SEARCH, className="btn btn-primary"),
        ],
        className="order-search",
    )
    return panel(
        "order.title",
        "order",
        html.Div(id=ids.ORDER_SUMMARY, className="order-summary"),
        dcc.Graph(
            id=ids.ORDER_TIMELINE,
            figure=theme.empty_figure("", height=220),
            config={"displaylogo": False},
            className="order-timeline",
            style={"display": "none"},
        ),
        dcc.Store(id=ids.ORDER_REQUEST),
        dcc.Store(id=ids.ORDER_DATA),
        dcc.Store(id=ids.ORDER_ROUTE),
        extra=search,
        class_name="panel-order",
    )


def summary(snapshot: dict[str, Any], events: pd.DataFrame, lang: str) -> list[Any]:
    rollup = as_dict(snapshot.get("rollup"))
    status = rollup.get("status") or snapshot.get("rollup")
    described = as_dict(rollup.get("summary")).get(lang)
    counts = events["outcome"].value_counts().to_dict() if not events.empty else {}
    parts = [f"{counts.get(k, 0)} {label(lang, 'order.' + k)}" for k in ("accepted", "late", "rejected")]
    return [
        html.Div(
            [
                html.Strong(str(snapshot.get("order_id", ""))),
                html.Span(label(lang, f"status.{status}") if status else "", className="status status-firing"),
            ],
            className="order-head",
        ),
        html.Div(described or "", className="muted"),
        html.Div(" · ".join(parts), className="small"),
    ]


def register(app: Dash, deps: WarroomDeps) -> None:
    @app.callback(
        Output(ids.ORDER_REQUEST, "data"),
        Output(ids.ORDER_INPUT, "value"),
        Input(ids.ORDER_SEARCH, "n_clicks"),
        Input(ids.ORDER_INPUT, "n_submit"),
        Input(ids.order_link(ALL, ALL), "n_clicks"),
        State(ids.ORDER_INPUT, "value"),
        State(ids.ORDER_REQUEST, "data"),
        prevent_initial_call=True,
    )
    def request(_clicks: Any, _submits: Any, _links: Any, typed: str | None, previous: Any) -> tuple[Any, Any]:
        trigger = callback_context.triggered_id
        nonce = int((previous or {}).get("n", 0)) + 1
        if isinstance(trigger, dict):
            fired = callback_context.triggered[0]
            if not fired.get("value"):
                return no_update, no_update  # links re-rendered, not clicked
            return {"order_id": trigger["order"], "n": nonce}, trigger["order"]
        wanted = (typed or "").strip()
        return ({"order_id": wanted, "n": nonce}, no_update) if wanted else (no_update, no_update)

    clientside(
        app,
        ClientsideFunction("warroom_actions", "order"),
        Output(ids.ORDER_DATA, "data"),
        Input(ids.ORDER_REQUEST, "data"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.ORDER_SUMMARY, "children"),
        Output(ids.ORDER_TIMELINE, "figure"),
        Output(ids.ORDER_TIMELINE, "style"),
        Output(ids.ORDER_ROUTE, "data"),
        Output(ids.ORDER_INPUT, "placeholder"),
        Input(ids.ORDER_DATA, "data"),
        Input(ids.LANG, "data"),
        Input(ids.TIMEZONE, "data"),
    )
    def show(result: Any, lang: str | None, tz: str | None) -> tuple[Any, Any, Any, Any, str]:
        lang = normalise(lang)
        placeholder = label(lang, "order.placeholder")
        hidden = {"display": "none"}
        if not result:
            return muted(label(lang, "order.hint")), no_update, hidden, None, placeholder
        if not result.get("ok"):
            reason = (result.get("body") or {}).get("detail") or ""
            message = (
                label(lang, "order.not_found") if result.get("status") == 404 else f"{result.get('status')} {reason}"
            )
            return muted(f"{result.get('order_id')}: {message}"), no_update, hidden, None, placeholder
        snapshot = result.get("body") or {}
        order_id = str(snapshot.get("order_id") or result.get("order_id"))
        try:
            events = deps.history.order_events(order_id, TimeWindow.last(LINEAGE_SPAN, deps.clock()))
        except HistoryError:
            events = pd.DataFrame()
        merged = lineage.lineage(snapshot, events)
        route = lineage.route(snapshot, events, lambda s: label(lang, f"status.{s}"))
        route_data = (
            {"lats": list(route.lats), "lons": list(route.lons), "labels": list(route.labels)} if route else None
        )
        return (
            summary(snapshot, merged, lang),
            charts.order_timeline(merged, lang, tz or "UTC"),
            {},
            route_data,
            placeholder,
        )
