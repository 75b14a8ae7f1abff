"""Loose ends of issue 16, each attacked on real servers with real clients: a war-room
WebSocket outliving its session, and connections that never finish their request head."""

from __future__ import annotations

import asyncio
import select
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from config.settings import Settings
from dashboard.gateway.hub import SESSION_ENDED
from dashboard.gateway.staff import StaffDirectory, hash_password
from gateway.harness import PASSWORDS, RunningGateway, running_gateways
from gateway.test_security_sessions import random_secret, write_staff
from orderradar.devstack.waiting import wait_until

pytestmark = pytest.mark.integration

#: Generous deadline for anything that should happen within about a second.
DEADLINE_S = 20.0


def _login(base_url: str, name: str, password: str) -> str:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        response = client.post("/api/v1/login", json={"username": name, "password": password})
        assert response.status_code == 200, response.text
        return str(client.cookies["orderradar_session"])


async def _open_warroom(server: RunningGateway, cookie: str) -> Any:
    ws = await websockets.connect(
        server.ws_url("/ws/warroom"), additional_headers={"Cookie": f"orderradar_session={cookie}"}
    )
    await ws.send('{"type": "subscribe"}')
    hello = orjson.loads(await asyncio.wait_for(ws.recv(), DEADLINE_S))
    assert hello["type"] == "subscribed"
    return ws


async def _closed_with(ws: Any) -> int | None:
    """Read until the server closes ``ws`` (within the deadline); its close code."""
    async with asyncio.timeout(DEADLINE_S):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed:
            return ws.close_code  # type: ignore[no-any-return]


async def _still_served(ws: Any) -> bool:
    await ws.send('{"type": "ping"}')
    async with asyncio.timeout(DEADLINE_S):
        while True:
            if orjson.loads(await ws.recv())["type"] == "pong":
                return True


def test_open_warroom_sockets_close_when_their_session_ends(stack_settings: Settings, tmp_path: Path) -> None:
    users = {
        name: {"role": role, "password": hash_password(f"{name}-pw-0001")}
        for name, role in (("manager", "manager"), ("oncall", "on-call"), ("viewer", "viewer"), ("steady", "viewer"))
    }
    path = tmp_path / "staff.yaml"
    write_staff(path, users)
    settings = stack_settings.with_overrides(session_secret=random_secret())
    with running_gateways(settings, StaffDirectory.load(path), count=2) as (first, second):
        cookies = {name: _login(first.base_url, name, f"{name}-pw-0001") for name in users}

        async def scenario() -> None:
            # Sockets on the second instance; the sign-out happens on the first.
            sockets = {name: await _open_warroom(second, cookie) for name, cookie in cookies.items()}
            async with httpx.AsyncClient(
                base_url=first.base_url, timeout=10, cookies={"orderradar_session": cookies["oncall"]}
            ) as client:
                assert (await client.post("/api/v1/logout")).status_code == 204
            assert await _closed_with(sockets["oncall"]) == SESSION_ENDED
            assert sockets["oncall"].close_reason == "session ended; sign in again"
            # A password change and a role change in the staff file.
            write_staff(
                path,
                {
                    **users,
                    "manager": {**users["manager"], "password": hash_password("new-pw-0002")},
                    "viewer": {**users["viewer"], "role": "on-call"},
                },
            )
            assert await _closed_with(sockets["manager"]) == SESSION_ENDED
            assert await _closed_with(sockets["viewer"]) == SESSION_ENDED
            assert await _still_served(sockets["steady"])  # nobody else is cut off
            await sockets["steady"].close()

        asyncio.run(scenario())


def _closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """Whether the server closed ``sock`` (EOF or reset) before ``deadline``."""
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], left)
        if readable:
            try:
                if sock.recv(65536) == b"":
                    return True
            except ConnectionResetError:
                return True
    return False


def _trickle_until_closed(sock: socket.socket, head: bytes, deadline: float) -> bool:
    """Send ``head`` one byte per 0.2 s (the attack's pace); True once the server closed."""
    for byte in head:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return True
        if _closed_by_server(sock, min(deadline, time.monotonic() + 0.2)):
            return True
        if time.monotonic() >= deadline:
            return False
    return False


def test_connections_that_never_finish_their_request_head_are_closed(
    stack_settings: Settings, staff: StaffDirectory
) -> None:
    timeout_s = 1.0
    settings = stack_settings.with_overrides(web_header_timeout_s=timeout_s)
    with running_gateways(settings, staff) as (server,):
        cookie = _login(server.base_url, "viewer", PASSWORDS["viewer"])
        address = ("127.0.0.1", server.port)

        async def scenario() -> None:
            ws = await _open_warroom(server, cookie)  # upgraded: the head deadline is over
            silent = socket.create_connection(address)
            partial = socket.create_connection(address)
            partial.sendall(b"GET /healthz HTT")
            kept_alive = socket.create_connection(address)
            kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            trickle = socket.create_connection(address)
            try:
                deadline = time.monotonic() + DEADLINE_S
                assert await asyncio.to_thread(_closed_by_server, silent, deadline), "silent connection kept"
                assert await asyncio.to_thread(_closed_by_server, partial, deadline), "partial request kept"
                answer = kept_alive.recv(65536)
                assert answer.startswith(b"HTTP/1.1 200"), answer
                kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: 1")  # the next request, unfinished
                assert await asyncio.to_thread(_closed_by_server, kept_alive, deadline), "second head kept"
                head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
                assert await asyncio.to_thread(_trickle_until_closed, trickle, head, deadline), "trickle kept"
                # Finished heads are served, and the WebSocket open all along still is.
                assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200
                assert await _still_served(ws)
            finally:
                for sock in (silent, partial, kept_alive, trickle):
                    sock.close()
                await ws.close()

        asyncio.run(scenario())
        wait_until(
            lambda: len(server.server.server_state.connections) == 0,
            DEADLINE_S,
            what="every connection gone from uvicorn",
        )
