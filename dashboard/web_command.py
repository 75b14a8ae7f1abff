"""``orderradar web``: the web tier (ingest API, staff APIs, WebSockets, pages) on uvicorn.

Each process is one stateless gateway instance; run several behind a load balancer.
Listens on ``ORDERRADAR_WEB_HOST``:``ORDERRADAR_WEB_PORT`` unless ``--host``/``--port``;
gateway limits come from ``ORDERRADAR_GATEWAY_*`` (see ``dashboard.gateway.gateway_settings``).
"""

from __future__ import annotations

import argparse

import uvicorn

from config.settings import Settings
from dashboard import landing
from dashboard.gateway.app import create_app
from dashboard.gateway.gateway_settings import from_environment
from dashboard.gateway.runtime import Gateway
from dashboard.gateway.server import tune_garbage_collector, uvicorn_config
from dashboard.tracking.page import tracking_routes
from dashboard.warroom.deps import build_deps
from dashboard.warroom.mount import MOUNT_PATH, warroom_mount


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default: ORDERRADAR_WEB_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default: ORDERRADAR_WEB_PORT)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log every request")


def run(args: argparse.Namespace, settings: Settings) -> int:
    changes = {k: v for k, v in (("web_host", args.host), ("web_port", args.port)) if v is not None}
    if changes:
        settings = settings.with_overrides(**changes)
    options = from_environment(settings)
    gateway = Gateway(settings, options)
    deps = build_deps(settings, prefix=MOUNT_PATH + "/")
    app = create_app(
        settings,
        gateway=gateway,
        extra_routes=[*landing.routes, *tracking_routes(gateway.tracking_token_valid)],
        mounts={MOUNT_PATH: warroom_mount(settings, deps)},
    )
    app.state.history = deps.history  # one InfluxDB client: the war-room's, also for /api/v1/delivery-stats
    server = uvicorn.Server(uvicorn_config(app, settings, options, access_log=not args.no_access_log))
    tune_garbage_collector()
    server.run()
    return 0
