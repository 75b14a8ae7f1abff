"""The web server the tracking tests kill and restart: the gateway with the tracking page mounted.

Run as a child process (``python tests/tracking/web_process.py``) with ``ORDERRADAR_*`` in
its environment; it wires the app exactly as ``orderradar web`` does once the tracking
routes are mounted there (``extra_routes=tracking_routes(gateway.tracking_token_valid)``).
"""

from __future__ import annotations

import uvicorn

from config.gateway import GatewaySettings
from config.settings import load_settings
from dashboard.gateway.app import create_app
from dashboard.gateway.runtime import Gateway
from dashboard.gateway.server import uvicorn_config
from dashboard.tracking.page import tile_layer, tracking_routes


def main() -> None:
    settings = load_settings()
    options = GatewaySettings.from_settings(settings)
    gateway = Gateway(settings, options)
    # Tiles as `orderradar web` reads them: ORDERRADAR_MAP_TILE_URL and friends.
    app = create_app(
        settings,
        gateway=gateway,
        extra_routes=tracking_routes(gateway.tracking_token_valid, tiles=tile_layer(settings)),
    )
    uvicorn.Server(uvicorn_config(app, settings, options, access_log=False)).run()


if __name__ == "__main__":
    main()
