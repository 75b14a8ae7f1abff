"""The outermost layer of the web tier, between uvicorn and the app of ``create_app``.

* **Host allow-list.** With ``ORDERRADAR_PUBLIC_URL`` set, a request whose ``Host`` is not the
  public URL's host (or one of ``ORDERRADAR_ALLOWED_HOSTS``) gets 400, WebSockets included, so
  nothing built from the request's URL can point elsewhere. The probes ``/healthz``,
  ``/readyz`` (and ``/metrics`` on the public port) answer any ``Host``: load balancers and
  scrapers call them by address.
* **/metrics on its own port.** With ``ORDERRADAR_METRICS_PORT`` set, the public port answers
  404 for ``/metrics`` and a second listener at ``ORDERRADAR_METRICS_HOST`` serves it.
* **Session guard.** Starts and stops :class:`~dashboard.gateway.session_guard.SessionGuard`
  with the app and hands it to every request through the lifespan state.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.settings import Settings
from dashboard.gateway.health import metrics_app
from dashboard.gateway.http_protocol import http_protocol_class
from dashboard.gateway.runtime import Gateway
from dashboard.gateway.session_guard import STATE_KEY, SessionGuard

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def allowed_hosts(settings: Settings) -> list[str]:
    """The ``Host`` names served (empty: any; only without a public URL)."""
    if not settings.public_url:
        return []
    public_host = urlsplit(settings.public_url).hostname
    return [h for h in (public_host, *settings.allowed_hosts) if h]


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the main server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class MetricsListener:
    """``/metrics`` on its own socket, bound at construction so a taken port fails at start."""

    def __init__(self, gateway: Gateway, host: str, port: int, header_timeout_s: float) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as exc:
            self.socket.close()
            raise OSError(f"cannot listen for /metrics on {host}:{port}: {exc.strerror}") from None
        self.port = int(self.socket.getsockname()[1])
        config = uvicorn.Config(
            metrics_app(gateway),
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            http=http_protocol_class(header_timeout_s),
        )
        self.server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(sockets=[self.socket]), name="gateway-metrics")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task


class WebEdge:
    """The ASGI app uvicorn serves: see the module docstring."""

    def __init__(self, app: Starlette, settings: Settings) -> None:
        gateway: Gateway = app.state.gateway
        self.app: ASGIApp = app
        self.guard = SessionGuard(gateway)
        hosts = allowed_hosts(settings)
        self.host_checked: ASGIApp = TrustedHostMiddleware(app, allowed_hosts=hosts) if hosts else app
        self.metrics = (
            MetricsListener(gateway, settings.metrics_host, settings.metrics_port, settings.web_header_timeout_s)
            if settings.metrics_port is not None
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/metrics" and self.metrics is not None:
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
        elif path in PROBE_PATHS:
            await self.app(scope, receive, send)
        else:
            await self.host_checked(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state")
        if state is None:
            raise RuntimeError("the ASGI server does not support lifespan state")
        state[STATE_KEY] = self.guard

        async def on_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                if self.metrics is not None:
                    await self.metrics.stop()
                await self.guard.stop()
            return message

        async def on_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                await self.guard.start()
                if self.metrics is not None:
                    await self.metrics.start()
            await send(message)

        await self.app(scope, on_receive, on_send)
