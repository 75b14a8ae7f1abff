"""The war-room as an ASGI app for the web gateway's mount hook.

::

    from dashboard.gateway.app import create_app
    from dashboard.warroom.mount import warroom_mount

    app = create_app(settings, gateway=gateway, mounts={"/warroom": warroom_mount(settings)})

The Dash (Flask, WSGI) app runs through ``a2wsgi`` and sits behind :class:`StaffOnly`, so
every page, asset and callback request needs a signed-in staff session. The browser then
opens ``/ws/warroom`` and calls ``/api/v1/...`` on the same origin with that session.
"""

from __future__ import annotations

from a2wsgi import WSGIMiddleware
from starlette.types import ASGIApp

from config.settings import Settings
from dashboard.warroom.access import StaffOnly
from dashboard.warroom.app import create_app
from dashboard.warroom.deps import WarroomDeps, build_deps

MOUNT_PATH = "/warroom"


def warroom_mount(settings: Settings, deps: WarroomDeps | None = None, *, workers: int = 8) -> ASGIApp:
    """The ASGI app to mount at :data:`MOUNT_PATH` (``deps`` default: :func:`build_deps`)."""
    deps = deps if deps is not None else build_deps(settings, prefix=MOUNT_PATH + "/")
    dash_app = create_app(settings, deps)
    return StaffOnly(WSGIMiddleware(dash_app.server, workers=workers))  # type: ignore[arg-type]
