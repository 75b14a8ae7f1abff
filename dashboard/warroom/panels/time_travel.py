"""Time travel: a slider over the retained history (one step a minute) and a "live" button.

Setting a past minute pauses the live feed in the browser (``assets/warroom_live.js``
keeps merging the WebSocket's updates but stops publishing them) and fills the live
stores with the war-room as of the end of that minute, read from InfluxDB
(:meth:`dashboard.warroom.history.InfluxHistory.as_of`, shaped by
:mod:`dashboard.warroom.as_of`): the map, KPI and incident panels draw it as they draw
live data. "Live" publishes the browser's live state again.

Keyboard: the slider's handle takes the arrow keys (a minute), Page Up / Page Down and
Home / End; the buttons a minute earlier / later and "live" are ordinary buttons. The
handle's accessible name and value text are set in the viewer's language and time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dash import ClientsideFunction, Dash, Input, Output, State, callback_context, dcc, html, no_update

from dashboard.warroom import as_of, ids, live
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.history import HistoryError
from dashboard.warroom.i18n import label, normalise
from dashboard.warroom.localtime import local_text
from dashboard.warroom.widgets import attributes, clientside, panel, text

SLIDER = "travel-slider"
LIVE = "travel-live"
EARLIER = "travel-earlier"
LATER = "travel-later"
#: dcc.Store {"at": epoch minute | None}: ``None`` is live.
MODE = "travel-mode"
STATUS = "travel-status"
#: Why a past minute shows nothing (no history then, InfluxDB unavailable).
NOTE = "travel-note"
TICK = "travel-tick"
#: dcc.Store written by the browser once it paused or resumed the live feed.
FEED = "travel-feed"
#: Channels an as-of minute replaces (alerts too: their tiers colour the incidents).
CHANNELS = (live.HEATMAP, live.KPIS, live.INCIDENT, live.ALERT, live.PARTITIONS)
RANGE_REFRESH_MS = 15_000


def _minute(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


def layout(deps: WarroomDeps) -> html.Section:
    now = _minute(deps.clock())
    slider = dcc.Slider(
        id=SLIDER,
        min=now - 60,
        max=now,
        step=1,
        value=now,
        marks=as_of.slider_marks(now - 60, now),
        updatemode="mouseup",
        included=False,
        # Dash 4 adds a number box by default: it would show the raw epoch minute.
        allow_direct_input=False,
        className="travel-slider",
    )
    buttons = [
        html.Button(["◀ ", text("travel.earlier", "travel")], id=EARLIER, className="btn btn-ghost"),
        html.Button([text("travel.later", "travel"), " ▶"], id=LATER, className="btn btn-ghost"),
        html.Button(text("travel.live", "travel"), id=LIVE, className="btn travel-live"),
    ]
    return panel(
        "travel.title",
        "travel",
        html.Div(
            [
                html.Div(text("travel.slider", "travel"), className="muted small", id="travel-slider-label"),
                html.Div(slider, className="travel-track"),
            ],
            className="travel-row",
        ),
        html.Div(
            [html.Span(text("travel.showing_live", "travel-status"), id=STATUS), html.Span(id=NOTE, className="muted")],
            className="travel-status",
            role="status",
            **attributes({"aria-live": "polite"}),
        ),
        dcc.Store(id=MODE, data={"at": None}),
        dcc.Store(id=FEED),
        dcc.Interval(id=TICK, interval=RANGE_REFRESH_MS),
        extra=buttons,
        class_name="panel-travel",
    )


def next_mode(
    trigger: str | None, value: int | None, bounds: tuple[int, int], mode: dict[str, Any] | None
) -> int | None:
    """The minute to show after a control was used (``None``: live)."""
    low, high = bounds
    current = (mode or {}).get("at")
    if trigger == LIVE:
        return None
    if trigger in (EARLIER, LATER):
        start = current if isinstance(current, int) else high
        step = -1 if trigger == EARLIER else 1
        moved = min(high, max(low, start + step))
        return moved
    if trigger == SLIDER and isinstance(value, int | float):
        return min(high, max(low, int(value)))
    return current if isinstance(current, int) else None


def status_text(at: int | None, lang: str, tz: str | None) -> str:
    if at is None:
        return label(lang, "travel.showing_live")
    moment = datetime.fromtimestamp(at * 60, UTC).isoformat()
    return label(lang, "travel.showing_past", at=local_text(moment, tz))


def register(app: Dash, deps: WarroomDeps) -> None:
    @app.callback(
        Output(MODE, "data"),
        Input(SLIDER, "value"),
        Input(EARLIER, "n_clicks"),
        Input(LATER, "n_clicks"),
        Input(LIVE, "n_clicks"),
        State(SLIDER, "min"),
        State(SLIDER, "max"),
        State(MODE, "data"),
        prevent_initial_call=True,
    )
    def choose(value: Any, _e: Any, _l: Any, _live: Any, low: int, high: int, mode: Any) -> Any:
        trigger = callback_context.triggered_id
        if trigger == SLIDER and value == ((mode or {}).get("at") or high):
            return no_update  # the slider following the mode (or "now" while live), not moved
        return {"at": next_mode(trigger, value, (int(low), int(high)), mode)}

    # Pause or resume the browser's live publishing first, then (server) fill the stores.
    clientside(app, ClientsideFunction("warroom_live", "travel"), Output(FEED, "data"), Input(MODE, "data"))

    @app.callback(
        *(Output(ids.live_store(c), "data", allow_duplicate=True) for c in CHANNELS),
        Output(NOTE, "children"),
        Input(FEED, "data"),
        State(MODE, "data"),
        State(ids.LANG, "data"),
        prevent_initial_call=True,
    )
    def show(feed: Any, mode: Any, lang: str | None) -> list[Any]:
        lang = normalise(lang)
        at = (mode or {}).get("at")
        if at is None or (feed or {}).get("at") != at:
            return [no_update] * len(CHANNELS) + [""]
        try:
            stores = as_of.stores(deps.history.as_of(datetime.fromtimestamp(at * 60, UTC)))
        except HistoryError:
            return [no_update] * len(CHANNELS) + [" · " + label(lang, "history.unavailable")]
        empty = not stores["heatmap"]["items"] and not stores["kpis"]["items"]
        return [stores[c] for c in CHANNELS] + [" · " + label(lang, "travel.no_history") if empty else ""]

    @app.callback(
        Output(STATUS, "children"),
        Input(FEED, "data"),
        Input(ids.LANG, "data"),
        Input(ids.TIMEZONE, "data"),
        prevent_initial_call=True,
    )
    def say(feed: Any, lang: str | None, tz: str | None) -> str:
        return status_text((feed or {}).get("at"), normalise(lang), tz)

    @app.callback(
        Output(SLIDER, "min"),
        Output(SLIDER, "max"),
        Output(SLIDER, "marks"),
        Output(SLIDER, "value"),
        Input(TICK, "n_intervals"),
        Input(MODE, "data"),
        Input(ids.TIMEZONE, "data"),
        State(SLIDER, "value"),
    )
    def span(_ticks: Any, mode: Any, tz: str | None, value: Any) -> tuple[Any, Any, Any, Any]:
        now = _minute(deps.clock())
        try:
            start = deps.history.history_start()
        except HistoryError:
            start = None
        low = min(now, _minute(start)) if start is not None else now - 60
        at = (mode or {}).get("at")
        return low, now, as_of.slider_marks(low, now, tz), now if at is None else at

    # The handle's accessible name and value text, in the viewer's language and zone.
    clientside(
        app,
        ClientsideFunction("warroom_live", "labelSlider"),
        Output(SLIDER, "className"),
        Input(SLIDER, "value"),
        Input(ids.LANG, "data"),
        State(ids.I18N_TABLE, "data"),
        State(ids.TIMEZONE, "data"),
    )
