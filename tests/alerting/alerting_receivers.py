"""Real local receivers for the channel contract tests: an HTTP server and an SMTP server.

Both listen on 127.0.0.1 on a free port and follow a *script*: a list of behaviours
consumed one per request ("ok", "transient", "permanent", "rate_limited", "stall",
"robot_error:<code>"); when the script runs out they answer "ok". Stalls wait on an event
that teardown sets, never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

#: Longest a stalled response waits for teardown (a safety net, not a delay).
STALL_LIMIT_S = 10.0


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Script:
    steps: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_step(self) -> str:
        with self.lock:
            return self.steps.pop(0) if self.steps else "ok"

    def record(self, request: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(request)

    @property
    def delivered(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["answered"] == "ok"]


def _http_handler(script: Script, success_body: bytes, success_type: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            step = script.next_step()
            parts = urlsplit(self.path)
            script.record(
                {
                    "path": parts.path,
                    "query": parse_qs(parts.query),
                    "headers": dict(self.headers.items()),
                    "body": body,
                    "answered": step,
                }
            )
            if step == "stall":
                script.release.wait(STALL_LIMIT_S)
                return
            if step == "ok":
                self._answer(200, success_body, success_type)
            elif step == "transient":
                self._answer(503, b"upstream busy", "text/plain")
            elif step.startswith("rate_limited"):
                seconds = step.partition(":")[2] or "7"
                self._answer(429, b"slow down", "text/plain", {"Retry-After": seconds})
            elif step == "permanent":
                # Like servers that echo the request: the error must still be redacted.
                self._answer(404, f"no such hook {self.path}".encode(), "text/plain")
            elif step.startswith("robot_error"):
                code = int(step.partition(":")[2])
                self._answer(
                    200, json.dumps({"errcode": code, "errmsg": f"error {self.path}"}).encode(), "application/json"
                )
            else:
                raise AssertionError(f"unknown script step {step!r}")

        def _answer(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def http_receiver(success_body: bytes, success_type: str = "application/json") -> Iterator[tuple[str, Script]]:
    """Yields (base URL, script)."""
    script = Script()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(script, success_body, success_type))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-http-receiver", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        script.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _SmtpHandler:
    def __init__(self, script: Script) -> None:
        self.script = script

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        step = self.script.next_step()
        self.script.record(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "body": envelope.content,
                "answered": step,
            }
        )
        if step == "stall":
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.script.release.wait, STALL_LIMIT_S)
            return "451 4.3.0 too late"
        return {
            "ok": "250 2.0.0 OK",
            "transient": "451 4.3.0 Temporary local problem, try again",
            "permanent": "550 5.1.1 Mailbox unavailable",
        }[step]


class _Authenticator:
    def __init__(self, script: Script, username: str, password: str) -> None:
        self.script = script
        self.username, self.password = username.encode(), password.encode()

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login == self.username and auth_data.password == self.password
        )
        if ok:
            self.script.logins.append(self.username.decode())
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_receiver(username: str, password: str) -> Iterator[tuple[int, Script]]:
    """A real SMTP server (aiosmtpd) requiring AUTH; yields (port, script)."""
    script = Script()
    port = closed_port()
    controller = Controller(
        _SmtpHandler(script),
        hostname="127.0.0.1",
        port=port,
        authenticator=_Authenticator(script, username, password),
        auth_required=False,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield port, script
    finally:
        script.release.set()
        controller.stop()
