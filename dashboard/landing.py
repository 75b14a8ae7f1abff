"""The web root: where a person who opens the server's address finds their way."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<link rel="icon" href="data:,"><title>订单雷达 Order Radar</title>
<style>body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",Arial,sans-serif;max-width:40rem;
margin:3rem auto;padding:0 1rem;color:#1b2333;line-height:1.6}a{color:#1565c0}code{background:#eef2f7;
padding:0 .3em;border-radius:3px}</style></head><body>
<main><h1>订单雷达 · Order Radar</h1>
<p>实时订单追踪 · Real-time order tracking.</p>
<ul>
<li><a href="/warroom/">作战室 War room</a> (员工登录 staff sign-in)</li>
<li>API: <code>POST /api/v1/events</code>, <code>GET /api/v1/orders/{order_id}</code>,
<code>GET /api/v1/incidents</code>, <code>GET /api/v1/alerts</code></li>
<li><a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a></li>
</ul>
<p>顾客追踪页面通过短信链接打开 · Customers open their tracking page from the link they were sent.</p>
</main></body></html>
"""


async def landing(_request: Request) -> HTMLResponse:
    return HTMLResponse(_PAGE, headers={"Cache-Control": "no-cache", "Referrer-Policy": "no-referrer"})


routes = [Route("/", landing)]
