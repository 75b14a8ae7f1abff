"""Small layout pieces shared by the panels: translated text, panel cards, tier chips.

Translated text is a ``html.Span`` whose id is ``{"type": ids.I18N, "key": <label key>,
"at": <where>}``; the shell's one language callback fills every such span, so panels never
need a callback of their own for static words.
"""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard.warroom import ids
from dashboard.warroom.i18n import DEFAULT_LANGUAGE, label


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
