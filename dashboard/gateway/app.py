"""The app factory: the gateway's routes, middleware and lifespan in one Starlette app.

Mount hook for the other web parts (war-room, customer tracking page)::

    gateway = Gateway(settings, options)
    app = create_app(
        settings,
        gateway=gateway,
        extra_routes=tracking_routes(gateway.tracking_token_valid),   # /t/{token}
        mounts={"/warroom": WSGIMiddleware(dash_app.server)},          # a2wsgi for Dash
    )

``extra_routes`` are matched after the gateway's own routes and before ``mounts``. Every
route shares the session middleware and the lifespan state, so any handler, mounted
sub-apps included, reaches the gateway as ``request.state.gateway`` and the signed-in
staff member with :func:`dashboard.gateway.sessions.staff_of`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp

from config.gateway import KIB, GatewaySettings
from config.settings import Settings
from dashboard.gateway import (
    data_quality_api,
    delivery_stats,
    health,
    ingest,
    operations_api,
    read_api,
    sessions,
    tracking_api,
)
from dashboard.gateway.responses import http_exception_handler
from dashboard.gateway.runtime import Gateway
from dashboard.gateway.staff import StaffDirectory
from dashboard.gateway.ws_track import track_socket
from dashboard.gateway.ws_warroom import warroom_socket

#: Body limit of the staff and tracking-link JSON APIs (polygons and cell lists included).
API_BODY_LIMIT = 256 * KIB


def _limited(limit: int) -> list[Middleware]:
    return [Middleware(RequestBodyLimitMiddleware, max_body_size=limit)]


def api_routes(options: GatewaySettings) -> list[BaseRoute]:
    small = _limited(API_BODY_LIMIT)
    return [
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        Route("/metrics", health.metrics),
        Route("/api/v1/events", ingest.ingest_events, methods=["POST"], middleware=_limited(options.max_body_bytes)),
        Route("/api/v1/login", sessions.login, methods=["POST"], middleware=_limited(8 * KIB)),
        Route("/api/v1/logout", sessions.logout, methods=["POST"]),
        Route("/api/v1/me", sessions.whoami),
        Route("/api/v1/orders/{order_id:path}", read_api.get_order),
        Route("/api/v1/delivery-stats", delivery_stats.get_delivery_stats),
        Route("/api/v1/data-quality", data_quality_api.get_data_quality),
        Route("/api/v1/incidents", read_api.list_incidents),
        Route("/api/v1/alerts", read_api.list_alerts),
        Route("/api/v1/alerts/{alert_id}/{action}", operations_api.alert_action, methods=["POST"], middleware=small),
        Route("/api/v1/alerts/{alert_id}/{action}", operations_api.alert_link_page, methods=["GET"]),
        Route("/api/v1/silences", read_api.list_silences, methods=["GET"]),
        Route("/api/v1/silences", operations_api.create_silence, methods=["POST"], middleware=small),
        Route("/api/v1/silences/{silence_id}", operations_api.expire_silence, methods=["DELETE"]),
        Route("/api/v1/disruptions", read_api.list_disruptions, methods=["GET"]),
        Route("/api/v1/disruptions", operations_api.create_disruption, methods=["POST"], middleware=small),
        Route("/api/v1/disruptions/{disruption_id}", operations_api.delete_disruption, methods=["DELETE"]),
        Route("/api/v1/tracking-links", tracking_api.issue_link, methods=["POST"], middleware=small),
        Route("/api/v1/tracking-links/{token}", tracking_api.revoke_link, methods=["DELETE"]),
        WebSocketRoute("/ws/track", track_socket),
        WebSocketRoute("/ws/warroom", warroom_socket),
    ]


def create_app(
    settings: Settings,
    *,
    options: GatewaySettings | None = None,
    gateway: Gateway | None = None,
    staff: StaffDirectory | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    mounts: Mapping[str, ASGIApp] | None = None,
) -> Starlette:
    """The web tier's ASGI app. The gateway starts and stops with the app's lifespan."""
    if gateway is None:
        options = options or GatewaySettings.from_settings(settings)
        gateway = Gateway(settings, options, staff=staff)
    options = gateway.options
    live_gateway = gateway

    readiness = health.ReadinessProbe(gateway)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        await live_gateway.start()
        try:
            # Lifespan state reaches every request, mounted sub-apps included.
            yield {"gateway": live_gateway, "readiness": readiness}
        finally:
            await live_gateway.stop()

    routes = [*api_routes(options), *extra_routes, *(Mount(path, app=a) for path, a in (mounts or {}).items())]
    middleware = [
        # Every text response over 500 bytes, gzipped (large ones in a worker thread): the
        # war-room's scripts shrink about 4x. WebSockets, event streams, images and responses
        # already encoded (the tracking page) pass through untouched.
        Middleware(GZipMiddleware, minimum_size=500, compresslevel=6),
        Middleware(
            SessionMiddleware,
            secret_key=settings.session_secret.get_secret_value(),
            session_cookie=sessions.COOKIE_NAME,
            max_age=options.session_max_age_s,
            same_site="strict",
            https_only=options.secure_cookies(settings),
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception_handler},
    )
    app.state.gateway = gateway
    return app
