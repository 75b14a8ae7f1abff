"""Only signed-in staff reach the war-room: an ASGI guard in front of the mounted Dash app.

The gateway's session middleware runs for every route, mounts included, so the guard asks
the gateway who is signed in (:func:`dashboard.gateway.sessions.staff_of`). Anyone else
gets a small sign-in page (``GET`` of the page itself) that posts to ``/api/v1/login`` and
reloads, or a 401 (Dash's own requests, assets).
"""

from __future__ import annotations

import json

from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from dashboard.gateway.sessions import staff_of
from dashboard.gateway.staff import Permission

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

LOGIN_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<link rel="icon" href="data:,">
<title>订单雷达 · 作战室 / Order Radar · War room</title>
<style>
body{margin:0;min-height:100vh;display:grid;place-items:center;background:#0b1220;color:#e6edf7;
font-family:"Noto Sans CJK SC","Noto Sans SC","PingFang SC","Microsoft YaHei",Arial,sans-serif}
form{background:#111a2e;border:1px solid #22304d;border-radius:10px;padding:28px 32px;width:320px}
h1{font-size:18px;margin:0 0 18px}label{display:block;font-size:13px;color:#8a9bb8;margin:12px 0 4px}
input{width:100%;box-sizing:border-box;padding:9px 10px;border-radius:6px;border:1px solid #3a4d73;
background:#0b1220;color:#e6edf7;font-size:14px}button{margin-top:18px;width:100%;padding:10px;border:0;
border-radius:6px;background:#3fa9f5;color:#061423;font-weight:600;font-size:14px;cursor:pointer}
#error{color:#ff6b6b;font-size:13px;min-height:18px;margin-top:10px}
</style></head><body>
<form id="login"><h1>订单雷达 · 作战室<br><small>Order Radar · War room</small></h1>
<label for="username">用户名 / User name</label><input id="username" name="username" autocomplete="username" required>
<label for="password">密码 / Password</label><input id="password" name="password" type="password"
autocomplete="current-password" required>
<button type="submit">登录 / Sign in</button><div id="error" role="alert"></div></form>
<script>
document.getElementById("login").addEventListener("submit", function (event) {
  event.preventDefault();
  var body = {username: document.getElementById("username").value, password: document.getElementById("password").value};
  fetch(LOGIN_URL, {method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
                    body: JSON.stringify(body)})
    .then(function (r) { if (r.ok) { window.location.reload(); } else {
      document.getElementById("error").textContent = r.status === 429 ? "请稍后再试 / Too many attempts" :
        "用户名或密码错误 / Wrong user name or password"; } })
    .catch(function () { document.getElementById("error").textContent = "网络错误 / Network error"; });
});
</script></body></html>
"""


class StaffOnly:
    """Passes requests of staff allowed to view through to ``app``; answers everyone else."""

    def __init__(self, app: ASGIApp, login_url: str = "/api/v1/login") -> None:
        self.app = app
        self.login_page = LOGIN_PAGE.replace("LOGIN_URL", json.dumps(login_url))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        member = staff_of(connection)
        if member is not None and member.can(Permission.VIEW):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        path = (
            scope["path"][len(scope.get("root_path", "")) :]
            if scope["path"].startswith(scope.get("root_path", ""))
            else scope["path"]
        )
        response: Response
        if scope["method"] == "GET" and path in ("", "/"):
            response = HTMLResponse(self.login_page, status_code=200, headers=_HEADERS)
        else:
            response = JSONResponse(
                {"error": "unauthenticated", "detail": "sign in first: POST /api/v1/login"},
                status_code=401,
                headers=_HEADERS,
            )
        await response(scope, receive, send)
