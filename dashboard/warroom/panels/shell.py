"""The frame around the panels: title, live-feed status, signed-in user, language switch,
and the stores the live feed (``assets/warroom_live.js``) writes into.

The language is kept in a ``dcc.Store`` with ``storage_type="local"``, so the browser
remembers it (``?lang=`` overrides it, Accept-Language picks it on a first visit); one
pattern-matching callback re-labels every translated span.
"""

from __future__ import annotations

from typing import Any

from dash import ALL, Dash, Input, Output, State, dcc, html

from dashboard.warroom import ids, live
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.i18n import DEFAULT_LANGUAGE, EN, ZH, table
from dashboard.warroom.widgets import InBrowser, in_browser, text


def stores() -> list[Any]:
    channel_stores = [
        dcc.Store(id=ids.live_store(channel), data={"seq": None, "items": {}}) for channel in live.CHANNELS
    ]
    return [
        dcc.Store(id=ids.LANG, storage_type="local"),
        dcc.Store(id=ids.LIVE_STATUS, data={"state": "connecting"}),
        dcc.Store(id=ids.LIVE_SEQ),
        dcc.Store(id=ids.LIVE_BOOT),
        dcc.Store(id=ids.TIMEZONE),
        dcc.Store(id=ids.I18N_TABLE, data=table()),
        *channel_stores,
    ]


def layout(deps: WarroomDeps) -> html.Header:
    switch = dcc.RadioItems(
        id=ids.LANG_SWITCH,
        options=[{"label": "中文", "value": ZH}, {"label": "EN", "value": EN}],
        value=DEFAULT_LANGUAGE,
        inline=True,
        className="lang-switch",
    )
    return html.Header(
        [
            html.Div([html.Span("◉", className="brand-mark"), html.H1(text("title", "shell"))], className="brand"),
            html.Div(
                [
                    html.Span(id=ids.LIVE_BADGE, className="live-badge live-connecting"),
                    html.Span(id=ids.USER_LABEL, className="user-label"),
                    switch,
                ],
                className="shell-tools",
            ),
        ],
        className="shell",
    )


_TIME_ZONE = "function () { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; }"


def register(app: Dash, deps: WarroomDeps) -> None:
    labels = State(ids.I18N_TABLE, "data")
    in_browser(
        app,
        [
            InBrowser(("warroom_live", "start"), [Output(ids.LIVE_BOOT, "data")], [Input(ids.LIVE_BOOT, "id")]),
            InBrowser(_TIME_ZONE, [Output(ids.TIMEZONE, "data")], [Input(ids.TIMEZONE, "id")]),
            # On load ?lang=, else the remembered language, else the server's Accept-Language choice
            # (<html lang>) sets the switch; the switch writes the remembered language
            # (assets/warroom_language.js, which also keeps <html lang> and the title in step).
            InBrowser(
                ("warroom_language", "sync"),
                [Output(ids.LANG, "data"), Output(ids.LANG_SWITCH, "value")],
                [Input(ids.LANG_SWITCH, "value"), Input(ids.LANG, "modified_timestamp")],
                [State(ids.LANG, "data"), labels],
            ),
            # A language switch re-labels the page at once, whatever the server is busy with.
            InBrowser(
                ("warroom_live", "relabel"),
                [Output({"type": ids.I18N, "key": ALL, "at": ALL}, "children")],
                [Input(ids.LANG, "data")],
                [labels],
            ),
            # The live badge and the signed-in user: the seq moves with every update.
            InBrowser(
                ("warroom_views", "status"),
                [
                    Output(ids.LIVE_BADGE, "children"),
                    Output(ids.LIVE_BADGE, "className"),
                    Output(ids.USER_LABEL, "children"),
                ],
                [Input(ids.LIVE_STATUS, "data"), Input(ids.LANG, "data"), Input(ids.LIVE_SEQ, "data")],
                [labels],
            ),
        ],
    )
