"""Disruption zones: draw one on the map (lasso) or upload a GeoJSON polygon, give a reason
and a validity window, save it; see the orders seen inside; withdraw a zone.

Saving and withdrawing run in the browser against ``POST``/``DELETE /api/v1/disruptions``
with the staff session (``assets/warroom_actions.js``); the zone then arrives on the live
feed and is drawn on the map. The affected orders are those with events inside the zone in
the last :data:`AFFECTED_SPAN` (from history), plus what the worker reports for the zone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dash import ALL, Dash, Input, Output, State, callback_context, dcc, html, no_update

from dashboard.warroom import ids, live, zone_drafts
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.history import HistoryError, TimeWindow
from dashboard.warroom.i18n import DEFAULT_LANGUAGE, label, normalise
from dashboard.warroom.localtime import local_text
from dashboard.warroom.map_figures import REASONS, reason_text
from dashboard.warroom.widgets import InBrowser, action_feedback, in_browser, muted, panel, text

AFFECTED_SPAN = timedelta(hours=6)
AFFECTED_SHOWN = 40
#: Roles the gateway lets manage disruption zones.
MANAGING_ROLES = frozenset({"manager", "on-call"})


def _reason_options(lang: str) -> list[dict[str, str]]:
    return [{"label": label(lang, f"zones.reason.{r}"), "value": r} for r in REASONS]


def layout(deps: WarroomDeps) -> html.Section:
    form = html.Div(
        [
            html.Div(
                [
                    html.Label(
                        [
                            text("zones.reason", "zones"),
                            dcc.Dropdown(
                                id=ids.ZONE_REASON,
                                options=_reason_options(DEFAULT_LANGUAGE),
                                value="typhoon",
                                clearable=False,
                                className="dropdown",
                            ),
                        ]
                    ),
                    html.Label(
                        [text("zones.name", "zones"), dcc.Input(id=ids.ZONE_NAME, type="text", className="input")]
                    ),
                    html.Label(
                        [
                            text("zones.from", "zones"),
                            dcc.Input(id=ids.ZONE_FROM, type="text", className="input", placeholder="YYYY-MM-DDTHH:MM"),
                        ]
                    ),
                    html.Label(
                        [
                            text("zones.until", "zones"),
                            dcc.Input(
                                id=ids.ZONE_UNTIL, type="text", className="input", placeholder="YYYY-MM-DDTHH:MM"
                            ),
                        ]
                    ),
                ],
                className="zone-fields",
            ),
            html.Div(
                [
                    dcc.Upload(
                        text("zones.upload", "zones"), id=ids.ZONE_UPLOAD, className="upload", accept=".json,.geojson"
                    ),
                    html.Span(id=ids.ZONE_DRAFT_INFO, className="muted"),
                    html.Button(text("zones.save", "zones"), id=ids.ZONE_SAVE, className="btn btn-primary"),
                ],
                className="zone-actions",
            ),
            html.Div(id=ids.ZONE_FEEDBACK, className="feedback"),
        ],
        className="zone-form",
    )
    return panel(
        "zones.title",
        "zones",
        html.Div(id=ids.ZONE_LIST, className="zone-list"),
        form,
        html.Div(id=ids.ZONE_AFFECTED, className="zone-affected"),
        dcc.Store(id=ids.ZONE_DRAFT),
        dcc.Store(id=ids.ZONE_RESULT),
        dcc.Store(id=ids.ZONE_SELECTED),
        class_name="panel-zones",
    )


def zone_card(zone: live.Zone, may_manage: bool, selected: bool, lang: str, tz: str = "UTC") -> html.Div:
    reason = reason_text(lang, zone.reason)
    affected = f"{zone.affected_orders:,}" if zone.affected_orders is not None else "–"
    return html.Div(
        [
            html.Div([html.Strong(zone.name or reason), html.Span(reason, className="chip")], className="zone-head"),
            html.Div(f"{local_text(zone.starts_at, tz)} – {local_text(zone.ends_at, tz)}", className="small"),
            html.Div(
                f"{label(lang, 'zones.created_by')} {zone.created_by} · {label(lang, 'zones.affected')} {affected}",
                className="muted small",
            ),
            html.Div(
                [
                    html.Button(
                        label(lang, "zones.affected"),
                        id=ids.zone_pick(zone.zone_id),
                        n_clicks=0,
                        className="btn btn-ghost",
                    ),
                    html.Button(
                        label(lang, "zones.delete"),
                        id=ids.zone_delete(zone.zone_id),
                        n_clicks=0,
                        disabled=not may_manage,
                        className="btn btn-resolve",
                    ),
                ],
                className="zone-buttons",
            ),
        ],
        className="zone-card" + (" selected" if selected else ""),
    )


def affected_orders(deps: WarroomDeps, geometry: dict[str, Any], title: str, lang: str) -> Any:
    try:
        events = deps.history.positions(zone_drafts.bounds(geometry), TimeWindow.last(AFFECTED_SPAN, deps.clock()))
    except HistoryError:
        return muted(label(lang, "history.unavailable"))
    found = zone_drafts.inside(geometry, events)
    orders = list(dict.fromkeys(found["order_id"].astype(str))) if not found.empty else []
    links = [html.A(o, id=ids.order_link(o, "zone"), className="order-link chip") for o in orders[:AFFECTED_SHOWN]]
    return [
        html.H4(f"{title} · {label(lang, 'zones.affected')}: {len(orders):,}"),
        html.Div(links or muted("–"), className="order-chips"),
    ]


def register(app: Dash, deps: WarroomDeps) -> None:
    @app.callback(
        Output(ids.ZONE_LIST, "children"),
        Input(ids.live_store(live.DISRUPTION), "data"),
        Input(ids.LIVE_STATUS, "data"),
        Input(ids.ZONE_SELECTED, "data"),
        Input(ids.LANG, "data"),
        Input(ids.TIMEZONE, "data"),
    )
    def show(zone_store: Any, status: Any, selected: str | None, lang: str | None, tz: str | None) -> Any:
        lang = normalise(lang)
        may_manage = (status or {}).get("role") in MANAGING_ROLES
        cards = [zone_card(z, may_manage, z.zone_id == selected, lang, tz or "UTC") for z in live.zones(zone_store)]
        return cards or muted(label(lang, "zones.none"))

    @app.callback(Output(ids.ZONE_REASON, "options"), Input(ids.LANG, "data"))
    def reasons(lang: str | None) -> list[dict[str, str]]:
        return _reason_options(normalise(lang))

    @app.callback(
        Output(ids.ZONE_DRAFT, "data"),
        Output(ids.ZONE_FEEDBACK, "children", allow_duplicate=True),
        Input(ids.MAP_GRAPH, "selectedData"),
        Input(ids.ZONE_UPLOAD, "contents"),
        Input(ids.ZONE_RESULT, "data"),
        State(ids.ZONE_UPLOAD, "filename"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    def draft(
        selected: Any, contents: str | None, result: Any, filename: str | None, lang: str | None
    ) -> tuple[Any, Any]:
        trigger = callback_context.triggered_id
        if trigger == ids.ZONE_RESULT:
            saved = bool(result and result.get("ok") and result.get("action") == "create")
            return (None, no_update) if saved else (no_update, no_update)
        try:
            found = (
                zone_drafts.from_upload(contents or "", filename or "")
                if trigger == ids.ZONE_UPLOAD
                else zone_drafts.from_lasso(selected)
            )
        except zone_drafts.ZoneDraftError as exc:
            return no_update, f"{label(normalise(lang), 'zones.bad_file')}: {exc}"
        return (found, "") if found else (no_update, no_update)

    @app.callback(Output(ids.ZONE_SELECTED, "data"), Input(ids.zone_pick(ALL), "n_clicks"), prevent_initial_call=True)
    def pick(_clicks: Any) -> Any:
        fired = callback_context.triggered[0] if callback_context.triggered else None
        return callback_context.triggered_id["zone"] if fired and fired.get("value") else no_update

    @app.callback(
        Output(ids.ZONE_DRAFT_INFO, "children"),
        Output(ids.ZONE_AFFECTED, "children"),
        Input(ids.ZONE_DRAFT, "data"),
        Input(ids.ZONE_SELECTED, "data"),
        Input(ids.LANG, "data"),
        State(ids.live_store(live.DISRUPTION), "data"),
    )
    def affected(draft: Any, selected: str | None, lang: str | None, zone_store: Any) -> tuple[Any, Any]:
        lang = normalise(lang)
        if draft and draft.get("geometry"):
            return label(lang, "zones.draft") + " ✓", affected_orders(
                deps, draft["geometry"], label(lang, "zones.draft"), lang
            )
        item = live.items(zone_store).get(selected or "")
        if isinstance(item, dict) and isinstance(item.get("geometry"), dict):
            zone = live.zone_from_item(selected or "", item)
            return label(lang, "zones.no_draft"), affected_orders(
                deps, item["geometry"], zone.name or zone.zone_id, lang
            )
        return label(lang, "zones.no_draft"), ""

    # The form's default window, and the gateway calls (assets/warroom_actions.js).
    in_browser(
        app,
        [
            InBrowser(
                ("warroom_actions", "defaultWindow"),
                [Output(ids.ZONE_FROM, "value"), Output(ids.ZONE_UNTIL, "value")],
                [Input(ids.ZONE_FROM, "id")],
            ),
            InBrowser(
                ("warroom_actions", "saveZone"),
                [Output(ids.ZONE_RESULT, "data")],
                [Input(ids.ZONE_SAVE, "n_clicks")],
                [
                    State(ids.ZONE_DRAFT, "data"),
                    State(ids.ZONE_NAME, "value"),
                    State(ids.ZONE_REASON, "value"),
                    State(ids.ZONE_FROM, "value"),
                    State(ids.ZONE_UNTIL, "value"),
                ],
                prevent_initial_call=True,
            ),
            InBrowser(
                ("warroom_actions", "deleteZone"),
                [Output(ids.ZONE_RESULT, "data", allow_duplicate=True)],
                [Input(ids.zone_delete(ALL), "n_clicks")],
                prevent_initial_call=True,
            ),
        ],
    )

    @app.callback(
        Output(ids.ZONE_FEEDBACK, "children"),
        Output(ids.ZONE_FEEDBACK, "className"),
        Input(ids.ZONE_RESULT, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    def feedback(result: Any, lang: str | None) -> tuple[str, str]:
        lang = normalise(lang)
        if ((result or {}).get("body") or {}).get("error") == "no_draft":
            return label(lang, "zones.no_draft"), "feedback error"
        return action_feedback(result, lang)
