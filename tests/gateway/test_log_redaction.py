"""No secret in any log: ``orderradar web`` at DEBUG (uvicorn's access and error loggers,
the websockets library's handshake and frame lines) serves the requests that carry every
kind of secret, and the log file it writes must not contain one of them."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from alerting.links import LinkAction, LinkSigner
from config import PACKAGE_CONFIG_DIR
from config.settings import Settings
from gateway.harness import SkuPlan, UpdateFeeder, answers_ready, order_snapshot, receive, web_process
from orderradar.devstack.process import free_port
from orderradar.devstack.waiting import wait_until

pytestmark = pytest.mark.integration

DEMO_PASSWORD = "orderradar-demo"  # config/staff.example.yaml


def test_no_secret_reaches_the_web_log(stack_settings: Settings, tmp_path: Path) -> None:
    api_key = "oms-" + secrets.token_urlsafe(24)
    session_secret = secrets.token_urlsafe(32)
    webhook = f"https://hooks.example.invalid/services/T0/B0/{secrets.token_urlsafe(18)}"
    settings = stack_settings.with_overrides(ingest_keys={"oms": api_key})
    shutil.copy(PACKAGE_CONFIG_DIR / "staff.example.yaml", tmp_path / "staff.yaml")
    port = free_port()
    base, ws_base = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    process = web_process(settings, port, tmp_path, access_log=True)
    # The most talkative level: websockets logs handshake headers and frames at DEBUG.
    process.argv[process.argv.index("INFO")] = "DEBUG"
    assert process.env is not None
    process.env.update({"ORDERRADAR_SESSION_SECRET": session_secret, "ORDERRADAR_ALERT_SECRET_OPS_WEBHOOK": webhook})
    process.start()
    try:
        process.wait_ready(answers_ready(base), 30)
        asyncio.run(_publish(settings, "o-1"))
        with httpx.Client(base_url=base, timeout=10) as staff:
            assert (
                staff.post("/api/v1/login", json={"username": "manager", "password": DEMO_PASSWORD}).status_code == 200
            )
            cookie = staff.cookies["orderradar_session"]

            def issued() -> httpx.Response | None:  # once the process has read the update
                response = staff.post("/api/v1/tracking-links", json={"order_id": "o-1"})
                return response if response.status_code != 404 else None

            link = wait_until(issued, 30, what="a tracking link for o-1")
            assert isinstance(link, httpx.Response) and link.status_code == 201, link
            token = link.json()["token"]
            assert staff.get(f"/t/{token}").status_code == 200
            signed = LinkSigner(session_secret.encode(), base).link(
                "a-1", LinkAction.ACK, datetime.now(UTC) + timedelta(hours=1)
            )
            signature = signed.rsplit("sig=", 1)[1]
            assert staff.get(signed.removeprefix(base)).status_code == 200
            # Credentials where they do not belong: an order id that is the API key (a
            # client's mistake), a webhook URL in a path. Only their values identify them.
            staff.get(f"/api/v1/orders/{api_key}")
            staff.get(f"/api/v1/orders/{webhook}")
            asyncio.run(_websockets(ws_base, token, api_key, cookie))
            assert staff.delete(f"/api/v1/tracking-links/{token}").status_code == 204
        process.signal(signal.SIGTERM)
        wait_until(lambda: not process.alive(), 20, what="web process exit")
    finally:
        process.stop()

    log = process.log_path.read_text()
    leaked = {
        name: value
        for name, value in {
            "tracking token": token,
            "alert-link signature": signature,
            "session cookie": cookie,
            "API key": api_key,
            "session secret": session_secret,
            "webhook URL": webhook,
            "webhook token": webhook.rsplit("/", 1)[1],
            "staff password": DEMO_PASSWORD,
        }.items()
        if value in log
    }
    assert not leaked, f"secrets in {process.log_path}: {sorted(leaked)}"
    # The lines that used to carry them are there, redacted (so the test saw them).
    for evidence in (
        '"WebSocket /ws/track?token=<redacted>" [accepted]',
        '"WebSocket /ws/track?token=<redacted>" 403',
        "GET /t/<redacted> HTTP/1.1",
        "sig=<redacted>",
        "/api/v1/tracking-links/<redacted>",
        "< cookie: <redacted>",
        "< authorization: <redacted>",
        "< x-api-key: <redacted>",
        '"token":"<redacted>"',
    ):
        assert evidence in log, f"{evidence!r} not in {process.log_path}"


async def _publish(settings: Settings, order_id: str) -> None:
    async with UpdateFeeder(settings) as feeder:
        await feeder.publish(order_snapshot(order_id, 1, {"a": SkuPlan(["paid"])}))


async def _websockets(ws_base: str, token: str, api_key: str, cookie: str) -> None:
    """Tracking with the token in the URL (as some clients do) and every credential header;
    the same URL from a foreign origin (refused: uvicorn's error logger names the URL);
    the war-room with the session cookie."""
    headers = {"Authorization": f"Bearer {api_key}", "X-Api-Key": api_key, "Cookie": f"orderradar_session={cookie}"}
    async with websockets.connect(
        f"{ws_base}/ws/track?token={token}", additional_headers=headers, open_timeout=10
    ) as ws:
        await ws.send(orjson.dumps({"type": "subscribe", "token": token}).decode())
        assert (await receive(ws))["type"] == "subscribed"
    with pytest.raises(InvalidStatus):
        await websockets.connect(
            f"{ws_base}/ws/track?token={token}", open_timeout=10, additional_headers={"Origin": "https://evil.example"}
        )
    async with websockets.connect(
        f"{ws_base}/ws/warroom", open_timeout=10, additional_headers={"Cookie": f"orderradar_session={cookie}"}
    ) as ws:
        await ws.send('{"type": "subscribe"}')
        assert (await receive(ws))["type"] == "subscribed"
