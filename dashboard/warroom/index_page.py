"""The war-room's HTML page: in the language the request asks for, with the small plotly.js.

* ``<html lang>`` and the title follow ``?lang=``, else ``Accept-Language``
  (:func:`dashboard.warroom.i18n.negotiate`); ``assets/warroom_language.js`` then applies a
  choice the browser remembers and keeps both in step with the language switch.
* :data:`PLOTLY_BUNDLES` are built by ``make web-assets`` into ``assets/vendor`` (see
  ``bundle/build.js``); the page includes the one its map backdrop needs, and dcc.Graph uses
  that ``window.Plotly`` instead of Dash's full plotly.min.js (its fallback when they are absent).
"""

from __future__ import annotations

from dash import Dash
from flask import request
from markupsafe import escape

from dashboard.warroom.i18n import label, negotiate

#: Bundle file name by "the map draws on raster tiles".
PLOTLY_BUNDLES = {False: "plotly-warroom-geo.min.js", True: "plotly-warroom-map.min.js"}


def unused_bundle(tiles: bool) -> str:
    """Dash's ``assets_ignore`` regex: the bundle this backdrop does not need."""
    return PLOTLY_BUNDLES[not tiles].replace(".", r"\.")


class WarroomDash(Dash):
    """Dash whose index page is in the language the request asks for (``<html lang>``, title)."""

    # dash passes its parts as keywords (metas, title, css, ...): kept as they are but the title
    def interpolate_index(self, **kwargs: str) -> str:  # type: ignore[override]
        lang = negotiate(request.headers.get("Accept-Language"), request.args.get("lang"))
        kwargs["title"] = str(escape(label(lang, "title")))
        page: str = super().interpolate_index(**kwargs)  # type: ignore[no-untyped-call]  # dash: unannotated
        return page.replace("<html>", f'<html lang="{lang}">', 1)
