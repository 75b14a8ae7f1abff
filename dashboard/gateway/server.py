"""Running the app under uvicorn with the WebSocket settings the gateway relies on.

Used by ``orderradar web`` and by the tests (which run it in-process on a free port).
Per-message deflate is off (CPU and decompression bombs), incoming messages are capped
at ``ws_max_message_bytes``, keepalive pings close dead peers, and the custom protocol
class bounds per-connection buffers and lets the hub abort stuck clients.

The app is served wrapped in :class:`dashboard.gateway.edge.WebEdge` (Host allow-list,
``/metrics`` port, session guard). ``X-Forwarded-For``/``-Proto`` are believed only from
``ORDERRADAR_TRUSTED_PROXIES`` (none by default: uvicorn would otherwise trust any client
on loopback, which let one address pose as many to the login throttle).
A client must send each request head within ``ORDERRADAR_WEB_HEADER_TIMEOUT_S``
(:mod:`dashboard.gateway.http_protocol`: uvicorn has no such timeout).
"""

from __future__ import annotations

import gc
from typing import Any

import uvicorn
from starlette.applications import Starlette

from config.gateway import GatewaySettings
from config.settings import Settings
from dashboard.gateway.edge import WebEdge
from dashboard.gateway.http_protocol import http_protocol_class
from dashboard.gateway.ws_protocol import protocol_class

#: Allocations between young-generation collections (CPython's default is 700).
GC_GEN0_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Fewer, cheaper collections for a process holding thousands of connections.

    Every open WebSocket keeps a few dozen long-lived objects (coroutines, frames, tasks),
    and each full collection walks all of them plus the ~100k objects of the imported
    libraries: with 1,000 clients a full pass took hundreds of milliseconds on a loaded
    machine, a pause every client sees as latency. Freezing the start-up heap takes the
    library objects out of every future pass, and a larger young-generation threshold
    makes passes rarer (this workload creates almost no cyclic garbage). Call once, after
    the app is built and before serving; it is process-wide, so only commands call it.
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def uvicorn_config(app: Starlette, settings: Settings, options: GatewaySettings, **overrides: Any) -> uvicorn.Config:
    """How to serve ``app`` (from ``create_app``); binds the metrics port now when one is set."""
    values: dict[str, Any] = {
        "host": settings.web_host,
        "port": settings.web_port,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
        "http": http_protocol_class(settings.web_header_timeout_s),
        "ws": protocol_class(options.ws_write_buffer_bytes, options.ws_socket_send_buffer),
        "ws_max_size": options.ws_max_message_bytes,
        "ws_ping_interval": options.ws_ping_interval_s,
        "ws_ping_timeout": options.ws_ping_timeout_s,
        "ws_per_message_deflate": False,
        "lifespan": "on",
        "log_config": None,
        "server_header": False,
        "timeout_graceful_shutdown": 10,
    }
    values.update(overrides)
    return uvicorn.Config(WebEdge(app, settings), **values)
