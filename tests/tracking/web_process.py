"""The web server the tracking tests kill and restart: the gateway with the tracking page mounted.

Run as a child process (``python tests/tracking/web_process.py``) with ``ORDERRADAR_*`` in
its environment; it wires the app exactly as ``orderradar web`` does once the tracking
routes are mounted there (``extra_routes=tracking_routes(gateway.tracking_token_valid)``).
"""

from __future__ import annotations

import argparse

import uvicorn

from config.settings import load_settings
from dashboard.gateway.app import create_app
from config.gateway import GatewaySettings
from dashboard.gateway.runtime import Gateway
from dashboard.gateway.server import uvicorn_config
from dashboard.tracking.page import TileLayer, tracking_routes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiles", help="raster tile URL template, e.g. http://127.0.0.1:9/{z}/{x}/{y}.png")
    args = parser.parse_args()
    settings = load_settings()
    options = GatewaySettings.from_settings(settings)
    gateway = Gateway(settings, options)
    tiles = TileLayer(args.tiles, "Test tiles") if args.tiles else None
    app = create_app(settings, gateway=gateway,
                     extra_routes=tracking_routes(gateway.tracking_token_valid, tiles=tiles))
    uvicorn.Server(uvicorn_config(app, settings, options, access_log=False)).run()


if __name__ == "__main__":
    main()
