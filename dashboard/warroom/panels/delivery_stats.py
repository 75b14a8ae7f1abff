"""Deliveries against promise: the answers of ``GET /api/v1/delivery-stats`` as a table.

Per group (region, channel, carrier or warehouse) and in total: delivered, on time, late,
late by 7 days or more, open past promise, on-time rate, over a date range the user types
(so replayed history, e.g. 2017, is as reachable as last week). The figures come from the
same function as the API (:func:`dashboard.gateway.delivery_stats.delivery_stats`) over
``deps.history``, the war-room's one InfluxDB client; the definitions are in that module.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dash import Dash, Input, Output, dcc, html

from dashboard.gateway.delivery_stats import (
    GROUP_BY,
    QueryRunner,
    StatsRequestError,
    delivery_stats,
    parse_query,
)
from dashboard.warroom import ids
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.history import HistoryError
from dashboard.warroom.i18n import label, normalise
from dashboard.warroom.widgets import attributes, muted, panel, segmented, text

# Component ids of this panel (kept beside the only panel that uses them).
SINCE = "delivery-since"
UNTIL = "delivery-until"
BY = "delivery-by"
REFRESH = "delivery-refresh"
TABLE = "delivery-table"
COLUMNS = ("delivered", "on_time", "late", "late_7d_or_more", "open_past_promise", "on_time_rate")
DEFAULT_SPAN = timedelta(days=7)


def layout(deps: WarroomDeps) -> html.Section:
    until = deps.clock().date() + timedelta(days=1)
    tools = [
        html.Span(text("delivery.since", "delivery"), className="muted"),
        dcc.Input(id=SINCE, type="text", value=(until - DEFAULT_SPAN).isoformat(), debounce=True, size="10"),
        html.Span(text("delivery.until", "delivery"), className="muted"),
        dcc.Input(id=UNTIL, type="text", value=until.isoformat(), debounce=True, size="10"),
        html.Span(text("delivery.by", "delivery"), className="muted"),
        segmented(BY, "region", GROUP_BY, "delivery.by", "delivery-by"),
        html.Button(text("delivery.refresh", "delivery"), id=REFRESH, className="btn btn-ghost"),
    ]
    return panel("delivery.title", "delivery", html.Div(id=TABLE), extra=tools, class_name="panel-delivery")


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _cells(row: dict[str, Any]) -> list[html.Td]:
    return [
        html.Td(
            _rate(row[c]) if c == "on_time_rate" else f"{row[c]:,}", className="num", **attributes({"data-field": c})
        )
        for c in COLUMNS
    ]


def stats_table(body: dict[str, Any], lang: str) -> html.Div:
    """The API's answer as a table: a total row, then one row per group (pure)."""
    by = body.get("by")
    head = html.Tr([html.Th(label(lang, "delivery.group")), *(html.Th(label(lang, f"delivery.{c}")) for c in COLUMNS)])
    rows = [
        html.Tr(
            [html.Th(label(lang, "delivery.total")), *_cells(body["total"])],
            className="total",
            **attributes({"data-group": "__total__"}),
        )
    ]
    for group in body.get("groups", []):
        key = group.get(by) if by else None
        rows.append(
            html.Tr(
                [html.Th(key or label(lang, "delivery.unknown")), *_cells(group)],
                **attributes({"data-group": key or ""}),
            )
        )
    return html.Div(
        [
            html.Table([html.Thead(head), html.Tbody(rows)], className="table delivery-table"),
            muted(f"{label(lang, 'delivery.as_of')} {body['as_of']}"),
        ]
    )


def answer(deps: WarroomDeps, since: str | None, until: str | None, by: str | None, lang: str) -> Any:
    runner = deps.history
    if not isinstance(runner, QueryRunner):
        return muted(label(lang, "delivery.unavailable"))
    now = deps.clock()
    params = {k: v for k, v in (("since", since), ("until", until), ("by", by)) if v}
    try:
        body = delivery_stats(runner, parse_query(params, now), now)
    except StatsRequestError as exc:
        return muted(f"{label(lang, 'delivery.bad_input')}: {exc}")
    except HistoryError as exc:
        return muted(f"{label(lang, 'delivery.unavailable')}: {str(exc)[:80]}")
    return stats_table(body, lang)


def register(app: Dash, deps: WarroomDeps) -> None:
    @app.callback(
        Output(TABLE, "children"),
        Input(SINCE, "value"),
        Input(UNTIL, "value"),
        Input(BY, "value"),
        Input(REFRESH, "n_clicks"),
        Input(ids.LANG, "data"),
    )
    def refresh(since: str | None, until: str | None, by: str | None, _clicks: Any, lang: str | None) -> Any:
        return answer(deps, since, until, by, normalise(lang))


__all__ = ["answer", "layout", "register", "stats_table"]
