"""Issue 16, items 2-4 and 7: forged sessions and links, revocation, the login throttle,
the Host allow-list and the metrics port. Every test attacks a real server on loopback
(``orderradar web``/``up`` as child processes, or the in-thread uvicorn of the harness)
with a real HTTP client."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
from base64 import b64encode
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import itsdangerous
import pytest
import websockets
from pydantic import SecretStr
from websockets.exceptions import InvalidStatus

from alerting.links import LinkAction, LinkSigner
from config.settings import DEV_SESSION_SECRET, Settings, to_env
from dashboard.gateway.staff import DEMO_STAFF_FILE, StaffDirectory, hash_password
from gateway.harness import (
    FIRED,
    PASSWORDS,
    SkuPlan,
    UpdateFeeder,
    cached_seq,
    login,
    order_snapshot,
    running_gateways,
    web_process,
)
from orderradar.devstack.process import ManagedProcess, free_port
from orderradar.devstack.waiting import wait_until
from stream.topics import ALERTS

pytestmark = pytest.mark.integration


def random_secret() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(48))


def forged_cookie(secret: str, session: dict[str, Any]) -> str:
    """A session cookie exactly as Starlette signs one, with ``secret``."""
    data = b64encode(json.dumps(session).encode())
    return itsdangerous.TimestampSigner(secret).sign(data).decode()


def forged_sessions(fingerprint: str) -> list[dict[str, Any]]:
    """The old cookie shape (a user name) and the new one with every field right."""
    now = int(datetime.now(UTC).timestamp())
    return [
        {"staff": {"user": "manager", "at": datetime.now(UTC).isoformat()}},
        {"staff": {"user": "manager", "sid": secrets.token_urlsafe(32), "fp": fingerprint, "at": now}},
    ]


def me(base_url: str, cookie: str) -> int:
    return httpx.get(f"{base_url}/api/v1/me", cookies={"orderradar_session": cookie}, timeout=10).status_code


def write_staff(path: Path, users: dict[str, dict[str, Any]]) -> None:
    """Replace the staff file atomically, as a deployment tool would."""
    lines = ["users:"]
    for name, user in users.items():
        lines += [f"  {name}:", f"    role: {user['role']}", f'    password: "{user["password"]}"']
        if "session_epoch" in user:
            lines.append(f"    session_epoch: {user['session_epoch']}")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# -- item 2: the session secret -----------------------------------------------------------


def test_orderradar_web_on_loopback_signs_with_a_random_secret_so_forged_cookies_fail(
    stack_settings: Settings, tmp_path: Path
) -> None:
    """No ORDERRADAR_SESSION_SECRET: the built-in value must not sign anything."""
    users = {"manager": {"role": "manager", "password": hash_password(PASSWORDS["manager"])}}
    write_staff(tmp_path / "staff.yaml", users)
    fingerprint = StaffDirectory.load(tmp_path / "staff.yaml").member("manager").fingerprint  # type: ignore[union-attr]
    port = free_port()
    process = web_process(stack_settings, port, tmp_path).start()
    try:
        base = f"http://127.0.0.1:{port}"
        process.wait_ready(lambda: answers(f"{base}/healthz"), 60)
        for session in forged_sessions(fingerprint):
            assert me(base, forged_cookie(DEV_SESSION_SECRET, session)) == 401, session
        secret_file = tmp_path / "session-secret"
        assert secret_file.stat().st_mode & 0o777 == 0o600
        # The server signs with the file's secret: a real login works, and so would a cookie
        # signed with that secret (which only this machine's user can read).
        with httpx.Client(base_url=base, timeout=10) as client:
            assert login(client, "manager").status_code == 200
            assert client.get("/api/v1/me").json()["role"] == "manager"
    finally:
        process.stop()


def _web_exit(settings: Settings, config_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDERRADAR_")}
    environment.update(
        {
            "ORDERRADAR_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "ORDERRADAR_TOPIC_PREFIX": settings.topic_prefix,
            "ORDERRADAR_INFLUX_URL": settings.influx_url,
            "ORDERRADAR_CONFIG_DIR": str(config_dir),
            "ORDERRADAR_DATA_DIR": str(config_dir),
            "ORDERRADAR_WEB_PORT": str(free_port()),
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "orderradar.cli", "web", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_orderradar_web_refuses_the_default_secret_and_demo_users_off_loopback(
    stack_settings: Settings, tmp_path: Path
) -> None:
    own_users = tmp_path / "own"
    own_users.mkdir()
    write_staff(own_users / "staff.yaml", {"alice": {"role": "manager", "password": hash_password("alice-pw-0001")}})
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "staff.yaml").write_text(DEMO_STAFF_FILE.read_text())
    strong = secrets.token_urlsafe(48)

    exposed = _web_exit(stack_settings, own_users, "--host", "0.0.0.0")
    assert exposed.returncode == 2, exposed.stderr
    assert "refusing to start" in exposed.stderr and "ORDERRADAR_SESSION_SECRET" in exposed.stderr

    https = _web_exit(stack_settings, own_users, ORDERRADAR_PUBLIC_URL="https://radar.example.test")
    assert https.returncode == 2 and "ORDERRADAR_SESSION_SECRET" in https.stderr, https.stderr

    demo_users = _web_exit(
        stack_settings, demo, ORDERRADAR_SESSION_SECRET=strong, ORDERRADAR_PUBLIC_URL="https://radar.example.test"
    )
    assert demo_users.returncode == 2, demo_users.stderr
    assert "demo users manager, oncall, viewer" in demo_users.stderr
    assert "ORDERRADAR_SESSION_SECRET" not in demo_users.stderr and strong not in demo_users.stderr

    # The same https deployment with its own users and secret starts.
    port = free_port()
    process = web_process(stack_settings, port, own_users)
    process.env = {
        **(process.env or {}),
        "ORDERRADAR_SESSION_SECRET": strong,
        "ORDERRADAR_PUBLIC_URL": "https://radar.example.test",
    }
    process.start()
    try:
        process.wait_ready(lambda: answers(f"http://127.0.0.1:{port}/healthz"), 60)
    finally:
        process.stop()


@pytest.mark.slow
def test_orderradar_up_creates_a_private_secret_and_reuses_it(
    broker: Any, influx: Any, stack_settings: Settings, tmp_path: Path
) -> None:
    settings = stack_settings.with_overrides(web_port=free_port(), data_dir=tmp_path)
    env = {**os.environ, **to_env(settings)}  # carries the built-in secret explicitly
    argv = [sys.executable, "-m", "orderradar.cli", "up", "--external-broker", "--external-influx", "--no-simulator"]
    base = f"http://127.0.0.1:{settings.web_port}"
    secret_file = tmp_path / "session-secret"
    fingerprint = StaffDirectory.load(DEMO_STAFF_FILE).member("manager").fingerprint  # type: ignore[union-attr]

    def run_up(check: Any) -> None:
        up = ManagedProcess("up", argv, tmp_path / "up.log", env=env).start()
        try:
            up.wait_ready(lambda: answers(f"{base}/healthz"), 120)
            check()
        finally:
            up.signal(signal.SIGINT)
            assert up.proc is not None
            up.proc.wait(timeout=60)
            up.stop()

    cookie: dict[str, str] = {}

    def first_run() -> None:
        assert secret_file.stat().st_mode & 0o777 == 0o600
        for session in forged_sessions(fingerprint):
            assert me(base, forged_cookie(DEV_SESSION_SECRET, session)) == 401
        with httpx.Client(base_url=base, timeout=10) as client:
            response = client.post("/api/v1/login", json={"username": "manager", "password": "orderradar-demo"})
            assert response.status_code == 200
            cookie["value"] = client.cookies["orderradar_session"]

    run_up(first_run)
    secret = secret_file.read_text()
    # A second run keeps the file (same secret), so the session signed by the first run holds.
    run_up(lambda: me(base, cookie["value"]) == 200 or pytest.fail("session of the first run refused"))
    assert secret_file.read_text() == secret and secret_file.stat().st_mode & 0o777 == 0o600


def test_alert_links_signed_with_the_old_default_or_living_past_seven_days_are_refused(
    stack_settings: Settings, staff: StaffDirectory
) -> None:
    settings = stack_settings.with_overrides(session_secret=random_secret())
    with running_gateways(settings, staff) as (server,):
        asyncio.run(_publish(server.settings, ALERTS, "a-1", FIRED))
        wait_until(lambda: server.gateway.warroom.get("alert", "a-1") is not None, 20, what="alert seen")
        now = datetime.now(UTC)
        real = LinkSigner(settings.session_secret.get_secret_value().encode(), server.base_url)
        forged = LinkSigner(DEV_SESSION_SECRET.encode(), server.base_url)
        with httpx.Client(timeout=10) as client:
            assert client.post(forged.link("a-1", LinkAction.ACK, now + timedelta(hours=1))).status_code == 403
            too_long = real.link("a-1", LinkAction.ACK, now + timedelta(days=30))
            assert client.get(too_long).status_code == 404 and client.post(too_long).status_code == 403
            assert client.post(real.link("a-1", LinkAction.ACK, now + timedelta(days=6))).status_code == 202


async def _publish(settings: Settings, topic: str, key: str, value: dict[str, Any]) -> None:
    async with UpdateFeeder(settings) as feeder:
        await feeder.publish_json(topic, key, value)


# -- item 3: revocation ------------------------------------------------------------------


def test_a_cookie_is_refused_after_logout_on_every_instance(stack_settings: Settings, staff: StaffDirectory) -> None:
    settings = stack_settings.with_overrides(session_secret=random_secret())
    with running_gateways(settings, staff, count=2) as (first, second):
        with httpx.Client(base_url=first.base_url, timeout=10) as client:
            assert login(client, "oncall").status_code == 200
            stolen = client.cookies["orderradar_session"]
            assert me(second.base_url, stolen) == 200  # one secret, any instance
            assert client.post("/api/v1/logout").status_code == 204
        assert me(first.base_url, stolen) == 401
        wait_until(lambda: me(second.base_url, stolen) == 401, 20, what="logout seen by the other instance")
        # A new login is a new session, not affected by the old one's revocation.
        with httpx.Client(base_url=second.base_url, timeout=10) as client:
            assert login(client, "oncall").status_code == 200
            assert client.get("/api/v1/me").status_code == 200
    # An instance started after the logout learns of it before it is ready.
    with running_gateways(settings, staff) as (late,):
        assert me(late.base_url, stolen) == 401


@pytest.fixture
def staff_file(tmp_path: Path) -> Iterator[tuple[Path, dict[str, dict[str, Any]]]]:
    users = {
        name: {"role": role, "password": hash_password(f"{name}-pw-0001")}
        for name, role in (("manager", "manager"), ("oncall", "on-call"), ("viewer", "viewer"), ("steady", "viewer"))
    }
    path = tmp_path / "staff.yaml"
    write_staff(path, users)
    yield path, users


def test_password_change_role_removal_and_epoch_end_that_users_sessions(
    stack_settings: Settings, staff_file: tuple[Path, dict[str, dict[str, Any]]]
) -> None:
    path, users = staff_file
    settings = stack_settings.with_overrides(session_secret=random_secret())
    with running_gateways(settings, StaffDirectory.load(path)) as (server,):
        cookies = {}
        for name in users:
            with httpx.Client(base_url=server.base_url, timeout=10) as client:
                response = client.post("/api/v1/login", json={"username": name, "password": f"{name}-pw-0001"})
                assert response.status_code == 200, response.text
                cookies[name] = client.cookies["orderradar_session"]
        changed = {
            **users,
            "manager": {**users["manager"], "password": hash_password("manager-pw-0002")},
            "oncall": {**users["oncall"], "role": "viewer"},
        }
        del changed["viewer"]
        write_staff(path, changed)
        for name in ("manager", "oncall", "viewer"):
            wait_until(lambda n=name: me(server.base_url, cookies[n]) == 401, 20, what=f"{name}'s session ended")
        assert me(server.base_url, cookies["steady"]) == 200  # nobody else is signed out
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            ok = client.post("/api/v1/login", json={"username": "manager", "password": "manager-pw-0002"})
            assert ok.status_code == 200
        write_staff(path, {**changed, "steady": {**changed["steady"], "session_epoch": 1}})
        wait_until(lambda: me(server.base_url, cookies["steady"]) == 401, 20, what="session epoch raised")


# -- item 4: the login throttle -----------------------------------------------------------


def _fail_login(base_url: str, username: str, headers: dict[str, str] | None = None, source: str | None = None) -> int:
    transport = httpx.HTTPTransport(local_address=source) if source else None
    with httpx.Client(base_url=base_url, timeout=10, transport=transport) as client:
        return client.post(
            "/api/v1/login", json={"username": username, "password": "wrong-guess"}, headers=headers
        ).status_code


def test_x_forwarded_for_from_a_client_that_is_no_proxy_does_not_reset_the_throttle(
    stack_settings: Settings, staff: StaffDirectory
) -> None:
    with running_gateways(stack_settings, staff, login_burst=3, login_account_burst=1000) as (server,):
        codes = [_fail_login(server.base_url, f"user{i}", {"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(4)]
        assert codes == [401, 401, 401, 429]
    # Behind a configured proxy the header names the client: each address has its own bucket.
    proxied = stack_settings.with_overrides(trusted_proxies=("127.0.0.1",))
    with running_gateways(proxied, staff, login_burst=3, login_account_burst=1000) as (server,):
        codes = [_fail_login(server.base_url, f"user{i}", {"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(4)]
        assert codes == [401, 401, 401, 401]
        same = [_fail_login(server.base_url, f"other{i}", {"X-Forwarded-For": "203.0.113.99"}) for i in range(4)]
        assert same == [401, 401, 401, 429]


def test_the_per_account_throttle_holds_across_client_addresses(
    stack_settings: Settings, staff: StaffDirectory
) -> None:
    with running_gateways(stack_settings, staff, login_burst=1000, login_account_burst=3) as (server,):
        # Successful logins give their token back: a busy user is never throttled.
        for _ in range(5):
            with httpx.Client(base_url=server.base_url, timeout=10) as client:
                assert login(client, "viewer").status_code == 200
        codes = [
            _fail_login(server.base_url, "Manager" if i % 2 else "manager", source=f"127.0.0.{i + 2}") for i in range(3)
        ]
        assert codes == [401, 401, 401]
        transport = httpx.HTTPTransport(local_address="127.0.0.9")
        with httpx.Client(base_url=server.base_url, timeout=10, transport=transport) as client:
            throttled = login(client, "manager")  # the right password, from a fresh address
            assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
            assert login(client, "oncall").status_code == 200  # other accounts are unaffected


# -- item 7: Host allow-list and the metrics port ---------------------------------------


def test_a_foreign_host_is_refused_and_links_use_the_public_url(
    stack_settings: Settings, staff: StaffDirectory
) -> None:
    public = "https://radar.example.test"
    settings = stack_settings.with_overrides(
        session_secret=random_secret(), public_url=public, allowed_hosts=("127.0.0.1",)
    )
    with running_gateways(settings, staff, https_only_cookies=False) as (server,):
        evil = {"Host": "evil.example"}
        assert httpx.get(f"{server.base_url}/api/v1/me", headers=evil).status_code == 400
        assert (
            httpx.post(
                f"{server.base_url}/api/v1/login",
                headers=evil,
                json={"username": "manager", "password": PASSWORDS["manager"]},
            ).status_code
            == 400
        )
        assert httpx.get(f"{server.base_url}/healthz", headers=evil).status_code == 200  # probes by address

        async def websocket_status() -> int:
            with pytest.raises(InvalidStatus) as info:
                await websockets.connect(server.ws_url("/ws/track"), additional_headers=evil, open_timeout=10)
            return info.value.response.status_code

        assert asyncio.run(websocket_status()) == 400
        assert httpx.get(f"{server.base_url}/api/v1/me", headers={"Host": "radar.example.test"}).status_code == 401

        async def publish_order() -> None:
            async with UpdateFeeder(server.settings) as feeder:
                await feeder.publish(order_snapshot("o-1", 1, {"a": SkuPlan(["paid"])}))

        asyncio.run(publish_order())
        wait_until(lambda: cached_seq(server, "o-1") == 1, 20, what="order cached")
        with httpx.Client(base_url=server.base_url, timeout=10) as client:  # Host: 127.0.0.1:<port>
            assert login(client, "manager").status_code == 200
            issued = client.post("/api/v1/tracking-links", json={"order_id": "o-1"})
            assert issued.status_code == 201, issued.text
            assert issued.json()["url"].startswith(public + "/t/")


def test_metrics_are_served_on_their_own_port_only(stack_settings: Settings, staff: StaffDirectory) -> None:
    metrics_port = free_port()
    settings = stack_settings.with_overrides(metrics_port=metrics_port)
    with running_gateways(settings, staff) as (server,):
        assert httpx.get(f"{server.base_url}/metrics", timeout=10).status_code == 404
        response = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        assert response.status_code == 200 and "orderradar_gateway_logins_total" in response.text
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/api/v1/me", timeout=10).status_code == 404
        assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200
