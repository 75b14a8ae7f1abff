"""``orderradar web``: the web tier (ingest API, staff APIs, WebSockets, pages) on uvicorn.

Each process is one stateless gateway instance; run several behind a load balancer.
Listens on ``ORDERRADAR_WEB_HOST``:``ORDERRADAR_WEB_PORT`` unless ``--host``/``--port``;
gateway limits come from ``ORDERRADAR_GATEWAY_*`` (see ``config.gateway``).

Only a loopback-only development stack (a loopback listen address, and no public URL or an
``http://`` one on loopback) may run with the built-in session secret or the demo users; it
then signs with the data directory's random secret instead
(:mod:`orderradar.devstack.session_secret`). Anywhere else either one stops the command
with exit code 2 and a message saying what to change.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from urllib.parse import urlsplit

import uvicorn

from config.gateway import GatewaySettings
from config.settings import Settings
from dashboard import landing
from dashboard.gateway.app import create_app
from dashboard.gateway.runtime import Gateway, load_staff
from dashboard.gateway.server import tune_garbage_collector, uvicorn_config
from dashboard.gateway.staff import StaffDirectory
from dashboard.tracking.page import tile_layer, tracking_routes
from dashboard.warroom.deps import build_deps
from dashboard.warroom.mount import MOUNT_PATH, warroom_mount
from orderradar.devstack.session_secret import SecretFileError, with_local_secret

#: Exit code when the configuration is unsafe for where the server would listen.
UNSAFE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default: ORDERRADAR_WEB_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default: ORDERRADAR_WEB_PORT)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log every request")


def run(args: argparse.Namespace, settings: Settings) -> int:
    changes = {k: v for k, v in (("web_host", args.host), ("web_port", args.port)) if v is not None}
    if changes:
        settings = settings.with_overrides(**changes)
    options = GatewaySettings.from_settings(settings)
    staff = load_staff(options.staff_path(settings))
    if not loopback_only(settings):
        problems = deployment_problems(settings, options, staff)
        if problems:
            print(
                f"orderradar web: refusing to start on {settings.web_host} (public URL "
                f"{settings.public_url or 'not set'}), which is not a loopback-only development stack:\n  - "
                + "\n  - ".join(problems),
                file=sys.stderr,
            )
            return UNSAFE
    else:
        try:
            settings = with_local_secret(settings)
        except SecretFileError as exc:
            print(f"orderradar web: {exc}", file=sys.stderr)
            return 1
    gateway = Gateway(settings, options, staff=staff)
    deps = build_deps(settings, prefix=MOUNT_PATH + "/")
    app = create_app(
        settings,
        gateway=gateway,
        extra_routes=[*landing.routes, *tracking_routes(gateway.tracking_token_valid, tiles=tile_layer(settings))],
        mounts={MOUNT_PATH: warroom_mount(settings, deps)},
    )
    app.state.history = deps.history  # one InfluxDB client: the war-room's, also for /api/v1/delivery-stats
    try:
        config = uvicorn_config(app, settings, options, access_log=not args.no_access_log)
    except OSError as exc:  # the metrics port is taken
        print(f"orderradar web: {exc}", file=sys.stderr)
        return 1
    server = uvicorn.Server(config)
    tune_garbage_collector()
    server.run()
    return 0


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def loopback_only(settings: Settings) -> bool:
    """Whether only this machine can reach the server (the one case for the dev defaults)."""
    if not _is_loopback(settings.web_host):
        return False
    if not settings.public_url:
        return True
    url = urlsplit(settings.public_url)
    return url.scheme == "http" and _is_loopback(url.hostname)


def deployment_problems(settings: Settings, options: GatewaySettings, staff: StaffDirectory) -> list[str]:
    """What makes this configuration unsafe outside a loopback development stack."""
    problems = []
    if settings.uses_dev_secret:
        problems.append(
            "ORDERRADAR_SESSION_SECRET is the built-in development value, which is public: anyone could "
            "forge a staff session or a one-click alert link. Set a random secret of 32+ characters, e.g. "
            "ORDERRADAR_SESSION_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    demo = staff.demo_users()
    if demo:
        problems.append(
            f"the staff file {options.staff_path(settings)} has the demo users {', '.join(demo)}, whose "
            "password is public: give them new password hashes (python -m dashboard.gateway.staff) or remove them"
        )
    return problems
