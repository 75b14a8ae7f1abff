"""The war-room's HTML page, rendered by the Dash app: its language and its plotly.js bundle.

(The browser tests in ``test_page_quality.py`` load it through the real web server; this
checks the choices that depend on configuration, without a browser.)
"""

from __future__ import annotations

import pytest

from config.settings import Settings
from dashboard.warroom.app import create_app
from dashboard.warroom.deps import build_deps
from dashboard.warroom.i18n import both
from dashboard.warroom.index_page import PLOTLY_BUNDLES


def index(tile_url: str | None, headers: dict[str, str], query: str = "") -> str:
    settings = Settings()
    dash_app = create_app(settings, build_deps(settings, prefix="/", tile_url=tile_url))
    response = dash_app.server.test_client().get("/" + query, headers=headers)
    assert response.status_code == 200
    page: str = response.get_data(as_text=True)
    return page


@pytest.mark.parametrize("tiles", [False, True])
def test_the_page_loads_the_bundle_its_backdrop_needs(tiles: bool) -> None:
    page = index("https://tiles.example/{z}/{x}/{y}.png" if tiles else None, {})
    assert f"vendor/{PLOTLY_BUNDLES[tiles]}" in page, "no partial plotly.js bundle: run `make web-assets`"
    assert PLOTLY_BUNDLES[not tiles] not in page


def test_the_page_language_follows_the_lang_parameter_then_accept_language() -> None:
    zh_title, en_title = both("title")
    page = index(None, {"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in page and f"<title>{en_title}</title>" in page
    page = index(None, {"Accept-Language": "en-US,en;q=0.9"}, "?lang=zh-CN")
    assert '<html lang="zh-CN">' in page and f"<title>{zh_title}</title>" in page
    assert '<html lang="zh-CN">' in index(None, {})
