"""Small layout pieces shared by the panels: translated text, panel cards, tier chips, and
browser-side callbacks registered with typed arguments (:func:`clientside`).

Translated text is a ``html.Span`` whose id is ``{"type": ids.I18N, "key": <label key>,
"at": <where>}``; the shell's one language callback fills every such span, so panels never
need a callback of their own for static words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from dash import ClientsideFunction, Dash, Input, Output, State, html

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


def tier_chip(tier: str) -> html.Span:
    return html.Span(tier, className=f"tier tier-{tier.lower()}")


def muted(content: Any) -> html.Span:
    return html.Span(content, className="muted")
