"""/healthz, /readyz and /metrics, and ``orderradar web`` as a real child process."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest

from config.settings import Settings
from dashboard.gateway.staff import StaffDirectory
from gateway.harness import (
    SkuPlan,
    answers_ready,
    issue_link,
    known_orders,
    order_snapshot,
    publish_updates,
    receive,
    running_gateways,
    subscribe_track,
    web_process,
)
from orderradar.devstack.process import free_port
from orderradar.devstack.waiting import wait_until

pytestmark = pytest.mark.integration


def test_ready_when_everything_answers_and_metrics_count_clients(
    stack_settings: Settings, staff: StaffDirectory
) -> None:
    with running_gateways(stack_settings, staff) as (server,):
        assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{server.base_url}/readyz")
        assert ready.status_code == 200 and ready.json() == {"ready": True}
        known_orders([server], "o-1")
        link = issue_link(server.base_url, "o-1")

        async def hold_one_client() -> str:
            ws = await subscribe_track(server.ws_url("/ws/track"), link["token"])
            async with ws:
                await receive(ws)
                return await asyncio.to_thread(lambda: httpx.get(f"{server.base_url}/metrics").text)

        text = asyncio.run(hold_one_client())
        response = httpx.get(f"{server.base_url}/metrics")
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 'orderradar_gateway_ws_clients{endpoint="track"} 1' in text
        for series in (
            "orderradar_gateway_consumer_lag_records{topic=",
            "orderradar_gateway_ws_slow_disconnects_total",
            "orderradar_gateway_events_accepted_total",
            "orderradar_gateway_ws_messages_sent_total{",
            "orderradar_gateway_publisher_up 1",
        ):
            assert series in text


def test_not_ready_with_reasons_when_influxdb_is_unreachable(stack_settings: Settings, staff: StaffDirectory) -> None:
    settings = stack_settings.with_overrides(influx_url=f"http://127.0.0.1:{free_port()}")
    with running_gateways(settings, staff, readiness_timeout_s=1.0) as (server,):
        response = httpx.get(f"{server.base_url}/readyz", timeout=10)
        assert response.status_code == 503
        reasons = response.json()["reasons"]
        assert len(reasons) == 1 and reasons[0].startswith("influxdb:")
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200  # alive, just not ready


def test_orderradar_web_serves_and_stops_cleanly_on_sigterm(stack_settings: Settings, tmp_path: Path) -> None:
    settings = stack_settings.with_overrides(ingest_keys={"oms": "oms-" + "k" * 40})
    port = free_port()
    process = web_process(settings, port, tmp_path, access_log=True, ws_max_lag_s=2).start()
    try:
        base = f"http://127.0.0.1:{port}"

        process.wait_ready(answers_ready(base), 30)
        publish_updates(settings, [order_snapshot("o-1", 1, {"a": SkuPlan(["paid"])}, source="oms")])

        def issued() -> httpx.Response | None:  # once the process has read the oms update
            response = httpx.post(
                f"{base}/api/v1/tracking-links",
                json={"order_id": "o-1"},
                headers={"X-Source": "oms", "X-Api-Key": "oms-" + "k" * 40},
            )
            return response if response.status_code != 404 else None

        link = wait_until(issued, 30, what="link for the order oms sent")
        assert link.status_code == 201 and link.json()["url"].startswith(base + "/t/")
        assert httpx.post(f"{base}/api/v1/login", json={"username": "a", "password": "b"}).status_code == 401
        revoked = httpx.delete(
            f"{base}/api/v1/tracking-links/{link.json()['token']}",
            headers={"X-Source": "oms", "X-Api-Key": "oms-" + "k" * 40},
        )
        assert revoked.status_code == 204
        process.signal(signal.SIGTERM)
        wait_until(lambda: not process.alive(), 20, what="web process exit")
        # uvicorn shuts down gracefully, then re-raises the signal so supervisors see it.
        assert process.proc is not None and process.proc.returncode in (0, -signal.SIGTERM)
        log = process.log_path.read_text()
        assert "Traceback" not in log and " ERROR " not in log, log
        assert "/api/v1/tracking-links/<redacted>" in log and link.json()["token"] not in log
    finally:
        process.stop()


def test_pages_mount_into_the_same_app_and_share_the_staff_session(
    stack_settings: Settings, staff: StaffDirectory
) -> None:
    """The hook the war-room (Dash) and the tracking page use: routes and mounts."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from config.gateway import GatewaySettings
    from dashboard.gateway.sessions import staff_of
    from gateway.harness import RunningGateway, login

    def tracking_page(request: Request) -> PlainTextResponse:
        order = request.state.gateway.customer_order(request.path_params["token"])
        if order is None:
            return PlainTextResponse("not found", status_code=404)
        return PlainTextResponse(f"page {order['type']} {order['order_id']} {order['seq']}")

    def warroom_home(request: Request) -> PlainTextResponse:
        member = staff_of(request)
        return PlainTextResponse(member.username if member else "anonymous", status_code=200 if member else 401)

    warroom = Starlette(routes=[Route("/", warroom_home)])
    settings = stack_settings
    server = RunningGateway(
        settings,
        GatewaySettings.from_settings(settings),
        staff,
        extra_routes=[Route("/t/{token}", tracking_page)],
        mounts={"/warroom": warroom},
    )
    server.start()
    try:
        known_orders([server], "o-1")
        link = issue_link(server.base_url, "o-1")
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            assert client.get(f"/t/{link['token']}").text == "page snapshot o-1 0"
            assert client.get("/t/" + "x" * 43).status_code == 404
            assert client.get("/warroom/").status_code == 401
            login(client, "viewer")
            assert client.get("/warroom/").text == "viewer"
    finally:
        server.stop()
