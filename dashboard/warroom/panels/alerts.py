"""Alerts: ack, resolve and silence buttons for the roles allowed to act (manager, on-call),
and who did what and when.

The buttons run in the browser (``assets/warroom_actions.js``): they call the gateway's
``POST /api/v1/alerts/{id}/ack|resolve`` and ``POST /api/v1/silences`` with the staff
session, so the gateway checks the role and records the actor. The outcome shows up twice:
at once as the API's answer, then as the alert's new state on the live feed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dash import ALL, ClientsideFunction, Dash, Input, Output, dcc, html

from dashboard.warroom import ids, live, titles
from dashboard.warroom.deps import WarroomDeps
from dashboard.warroom.i18n import label, normalise
from dashboard.warroom.localtime import local_text
from dashboard.warroom.widgets import action_feedback, clientside, muted, panel, tier_chip

#: Roles the gateway lets act on alerts (``dashboard.gateway.staff.ROLE_PERMISSIONS``).
ACTING_ROLES = frozenset({"manager", "on-call"})
SHOWN = 60


def silence_matchers(alert: live.Alert) -> list[str]:
    """Matchers that silence exactly this alert's incidents, else the alert's own labels
    (what Alertmanager pre-fills when you silence an alert)."""
    if alert.incident_ids:
        pattern = "|".join(re.escape(i) for i in sorted(alert.incident_ids))
        return [_matcher("incident_id", "=~", pattern)]
    shown = {k: v for k, v in sorted(alert.labels.items()) if k not in ("state", "tier")}
    if shown:
        return [_matcher(k, "=", v) for k, v in shown.items()][:20]
    return [_matcher("alert_id", "=", alert.alert_id)]


def _matcher(name: str, op: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}{op}"{escaped}"'


def _when(text: str | None, tz: str) -> str:
    return local_text(text, tz, seconds=True)


def _button(alert: live.Alert, action: str, key: str, enabled: bool, lang: str) -> html.Button:
    matchers = json.dumps(silence_matchers(alert)) if action == "silence" else ""
    return html.Button(
        label(lang, key),
        id=ids.alert_action(action, alert.alert_id, matchers),
        n_clicks=0,
        disabled=not enabled,
        className=f"btn btn-{action}",
        title="" if enabled else label(lang, "alerts.viewer"),
    )


def alert_card(alert: live.Alert, role: str | None, lang: str, title: str, tz: str = "UTC") -> html.Div:
    """One alert: ``title`` says what happened, where and how big (``titles.alert_title``)."""
    may_act = role in ACTING_ROLES
    history = []
    if alert.acked_by:
        history.append(
            html.Div(
                f"✔ {label(lang, 'alerts.acked_by')} {alert.acked_by} · {_when(alert.acked_at, tz)}",
                className="alert-history acked",
            )
        )
    if alert.resolved_by:
        history.append(
            html.Div(
                f"✔ {label(lang, 'alerts.resolved_by')} {alert.resolved_by} · {_when(alert.resolved_at, tz)}",
                className="alert-history resolved",
            )
        )
    buttons = []
    if alert.open:
        buttons = [
            _button(alert, "ack", "alerts.ack", may_act and alert.can_ack, lang),
            _button(alert, "resolve", "alerts.resolve", may_act and alert.can_resolve, lang),
            _button(alert, "silence", "alerts.silence", may_act and alert.status != "silenced", lang),
        ]
    return html.Div(
        [
            html.Div(
                [
                    tier_chip(alert.tier),
                    html.Span(title, className="alert-title", title=title),
                    html.Span(label(lang, f"alerts.status.{alert.status}"), className=f"status status-{alert.status}"),
                ],
                className="alert-head",
            ),
            html.Div(muted(f"{alert.alert_id} · {_when(alert.first_at, tz)}"), className="small"),
            *history,
            html.Div(buttons, className="alert-buttons"),
        ],
        className="alert-card" + ("" if alert.open else " closed"),
        id=ids.alert_card(alert.alert_id),
    )


def silence_lines(silence_store: Any, lang: str, tz: str = "UTC") -> list[html.Div]:
    lines = []
    for key, item in sorted(live.items(silence_store).items()):
        if isinstance(item, dict) and item.get("active"):
            lines.append(
                html.Div(
                    f"🔕 {label(lang, 'alerts.silenced_by')} {item.get('created_by')} · "
                    f"{_when(item.get('created_at'), tz)} · {item.get('detail') or key}",
                    className="alert-history silenced",
                )
            )
    return lines


def feedback(result: dict[str, Any] | None, lang: str) -> tuple[str, str]:
    """Text and CSS class for the answer to the last action."""
    subject = f"{result.get('action')} {result.get('alert') or ''}".strip() if result else ""
    return action_feedback(result, lang, subject)


def layout(deps: WarroomDeps) -> html.Section:
    return panel(
        "alerts.title",
        "alerts",
        html.Div(id=ids.ALERT_FEEDBACK, className="feedback"),
        html.Div(id=ids.ALERT_LIST, className="alert-list"),
        dcc.Store(id=ids.ALERT_RESULT),
        class_name="panel-alerts",
    )


def register(app: Dash, deps: WarroomDeps) -> None:
    @app.callback(
        Output(ids.ALERT_LIST, "children"),
        Input(ids.live_store(live.ALERT), "data"),
        Input(ids.live_store(live.SILENCE), "data"),
        Input(ids.LIVE_STATUS, "data"),
        Input(ids.LANG, "data"),
        Input(ids.TIMEZONE, "data"),
        Input(ids.live_store(live.INCIDENT), "data"),
    )
    def show(
        alert_store: Any, silence_store: Any, status: Any, lang: str | None, tz: str | None, incident_store: Any
    ) -> Any:
        lang, tz = normalise(lang), tz or "UTC"
        role = (status or {}).get("role")
        covered = {
            i.incident_id: i for i in titles.named(live.incidents(incident_store, alert_store), deps.places, lang)
        }
        cards = [
            alert_card(a, role, lang, titles.alert_title(a, covered, deps.places, lang), tz)
            for a in live.alerts(alert_store)[:SHOWN]
        ]
        return [*silence_lines(silence_store, lang, tz), *cards] or muted(label(lang, "alerts.none"))

    clientside(
        app,
        ClientsideFunction("warroom_actions", "alert"),
        Output(ids.ALERT_RESULT, "data"),
        Input(ids.alert_action(ALL, ALL, ALL), "n_clicks"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.ALERT_FEEDBACK, "children"),
        Output(ids.ALERT_FEEDBACK, "className"),
        Input(ids.ALERT_RESULT, "data"),
        Input(ids.LANG, "data"),
    )
    def show_feedback(result: Any, lang: str | None) -> tuple[str, str]:
        return feedback(result, normalise(lang))
