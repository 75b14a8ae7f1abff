"""Small layout pieces shared by the panels: translated text, panel cards, tier chips, and
browser-side callbacks registered with typed arguments (:func:`clientside`).

Translated text is a ``html.Span`` whose id is ``{"type": ids.I18N, "key": <label key>,
"at": <where>}``; the shell's one language callback fills every such span, so panels never
need a callback of their own for static words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html

from dashboard.warroom import ids
from dashboard.warroom.i18n import DEFAULT_LANGUAGE, label


def clientside(
    app: Dash,
    function: ClientsideFunction | str,
    *dependencies: Output | Input | State,
    prevent_initial_call: bool | Literal["initial_duplicate"] | None = None,
) -> None:
    """``app.clientside_callback(function, *dependencies, ...)``: a callback run in the browser."""
    # dash leaves clientside_callback unannotated; its arguments are typed here instead
    app.clientside_callback(function, *dependencies, prevent_initial_call=prevent_initial_call)  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class InBrowser:
    """One row of a panel's table of browser-side callbacks: a function of ``assets/*.js`` as
    ``(namespace, name)`` (or inline JavaScript), and the components it writes and reads."""

    function: tuple[str, str] | str
    outputs: Sequence[Output]
    inputs: Sequence[Input]
    states: Sequence[State] = ()
    prevent_initial_call: bool | Literal["initial_duplicate"] | None = None


def in_browser(app: Dash, callbacks: Iterable[InBrowser]) -> None:
    """Register a table of browser-side callbacks (:class:`InBrowser`), one :func:`clientside` each."""
    for row in callbacks:
        function = ClientsideFunction(*row.function) if isinstance(row.function, tuple) else row.function
        dependencies: list[Output | Input | State] = [*row.outputs, *row.inputs, *row.states]
        clientside(app, function, *dependencies, prevent_initial_call=row.prevent_initial_call)


def attributes(values: Mapping[str, str]) -> dict[str, Any]:
    """``data-*`` and ``aria-*`` attributes, to pass as ``**attributes({...})``: dash takes them
    only as extra keywords, and a ``dict[str, str]`` would be checked against every typed prop."""
    return dict(values)


def text(key: str, at: str, **props: Any) -> html.Span:
    """A span showing label ``key``; ``at`` makes the id unique where a key repeats."""
    return html.Span(label(DEFAULT_LANGUAGE, key), id={"type": ids.I18N, "key": key, "at": at}, **props)


def panel(title_key: str, at: str, *children: Any, extra: Any = None, class_name: str = "") -> html.Section:
    """A titled card; ``extra`` goes to the right of the title (controls)."""
    header = html.Header(
        [html.H2(text(title_key, at)), html.Div(extra, className="panel-tools")], className="panel-header"
    )
    return html.Section([header, *children], className=f"panel {class_name}".strip())


def segmented(component_id: str, value: str, choices: Iterable[str], key_prefix: str, at: str) -> dcc.RadioItems:
    """A row of toggle buttons, one per choice, labelled ``<key_prefix>.<choice>``."""
    options = [{"label": text(f"{key_prefix}.{choice}", at), "value": choice} for choice in choices]
    return dcc.RadioItems(id=component_id, value=value, inline=True, className="segmented", options=options)


def unavailable_text(lang: str, error: Exception) -> str:
    """ "History unavailable: <the first words of why>", where a query's answer would stand."""
    return f"{label(lang, 'history.unavailable')}: {str(error)[:80]}"


def action_feedback(result: Mapping[str, Any] | None, lang: str, subject: str = "") -> tuple[str, str]:
    """Text and CSS class for the gateway's answer to a staff action (``warroom_actions.js``
    stores ``{ok, status, body}``); ``subject`` names what was acted on, when there is a name."""
    if not result:
        return "", "feedback"
    status = result.get("status")
    if result.get("ok"):
        return f"{label(lang, 'alerts.done')}{': ' + subject if subject else ''} ({status})", "feedback ok"
    body = result.get("body") or {}
    problems = "; ".join(f"{p.get('field')}: {p.get('problem')}" for p in body.get("problems") or ())
    detail = problems or body.get("detail") or body.get("error") or ""
    return f"{label(lang, 'alerts.failed')}: {subject + ' · ' if subject else ''}{status} {detail}", "feedback error"


def tier_chip(tier: str) -> html.Span:
    return html.Span(tier, className=f"tier tier-{tier.lower()}")


def muted(content: Any) -> html.Span:
    return html.Span(content, className="muted")
