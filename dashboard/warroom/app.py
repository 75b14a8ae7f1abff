"""The war-room Dash app: a thin shell that binds the panels to their dependencies.

Build it with :func:`create_app` (or, inside the web gateway, through
:func:`dashboard.warroom.mount.warroom_mount`, which also builds the dependencies).
"""

from __future__ import annotations

from pathlib import Path

from dash import Dash

from config.settings import Settings
from dashboard.warroom import panels
from dashboard.warroom.deps import WarroomDeps, build_deps
from dashboard.warroom.i18n import DEFAULT_LANGUAGE, label
from dashboard.warroom.index_page import WarroomDash, unused_bundle

ASSETS = Path(__file__).resolve().parent / "assets"


def create_app(settings: Settings, deps: WarroomDeps | None = None) -> Dash:
    """The Dash app served under ``deps.prefix`` (routes are relative to the mount point)."""
    deps = deps if deps is not None else build_deps(settings)
    app = WarroomDash(
        __name__,
        title=label(DEFAULT_LANGUAGE, "title"),
        update_title="",
        assets_folder=str(ASSETS),
        assets_ignore=unused_bundle(deps.backdrop.tiles),
        requests_pathname_prefix=deps.prefix,
        routes_pathname_prefix="/",
        serve_locally=True,
        compress=False,
    )
    app.layout = panels.page(deps)
    panels.register_all(app, deps)
    return app
