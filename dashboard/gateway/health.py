"""``/healthz`` (the process answers), ``/readyz`` (it can do its job) and ``/metrics``.

Ready means: the producer is connected, both readers have their partitions, the
tracking-token reader has caught up with the topic (else valid links would 404), the
session revocations published before start are known (else a signed-out cookie would
work here), the broker answers a metadata request and InfluxDB answers ``/ping``. The
answer is cached for ``readiness_cache_s`` so a busy load balancer cannot turn probes
into load.

``/metrics`` is served on the public port, or, with ``ORDERRADAR_METRICS_PORT`` set, only by
:func:`metrics_app` on that port (:mod:`dashboard.gateway.edge`).
"""

from __future__ import annotations

import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dashboard.gateway.metrics import CONTENT_TYPE
from dashboard.gateway.responses import json_response
from dashboard.gateway.runtime import Gateway
from dashboard.gateway.sessions import gateway_of, guard_of


class ReadinessProbe:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._cached: tuple[float, list[str]] | None = None

    async def reasons(self) -> list[str]:
        """Why this instance is not ready (empty when it is)."""
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.gateway.options.readiness_cache_s:
            return self._cached[1]
        reasons = await self._check()
        self._cached = (time.monotonic(), reasons)
        return reasons

    async def _check(self) -> list[str]:
        gateway = self.gateway
        timeout = gateway.options.readiness_timeout_s
        reasons = [f"background task stopped: {failure}" for failure in gateway.failed_tasks]
        if not gateway.publisher.connected:
            reasons.append(f"producer: {gateway.publisher.last_error or 'not connected yet'}")
        for reader in (gateway.updates, gateway.grants):
            if not reader.assigned:
                reasons.append(f"consumer {reader.name}: {reader.last_error or 'partitions not assigned yet'}")
        if gateway.grants.assigned and not gateway.grants.caught_up:
            reasons.append("consumer tracking-tokens: still reading the grants")
        broker = await gateway.updates.probe(timeout)
        if broker is not None and gateway.updates.assigned:
            reasons.append(f"broker: {broker}")
        influx = await _influx_problem(gateway.settings.influx_url, timeout)
        if influx is not None:
            reasons.append(f"influxdb: {influx}")
        return reasons


async def _influx_problem(url: str, timeout: float) -> str | None:
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(f"{url.rstrip('/')}/ping")
    except httpx.HTTPError as exc:
        return f"{url} unreachable: {type(exc).__name__}"
    return None if response.status_code == 204 else f"{url}/ping answered {response.status_code}"


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    probe: ReadinessProbe = request.state.readiness
    reasons = await probe.reasons()
    sessions = guard_of(request).not_ready()
    if sessions is not None:
        reasons = [*reasons, sessions]
    if reasons:
        return json_response({"ready": False, "reasons": reasons}, 503)
    return json_response({"ready": True})


async def metrics(request: Request) -> Response:
    return Response(gateway_of(request).metrics.render(), media_type=CONTENT_TYPE)


def metrics_app(gateway: Gateway) -> Starlette:
    """``/metrics`` alone, for its own port."""

    async def render(_request: Request) -> Response:
        return Response(gateway.metrics.render(), media_type=CONTENT_TYPE)

    return Starlette(routes=[Route("/metrics", render)])
