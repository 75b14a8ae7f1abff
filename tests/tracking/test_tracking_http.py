"""The tracking page over HTTP and /ws/track against the real gateway: privacy and weight."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from dashboard.gateway.tracking_tokens import token_digest
from stream.topics import TRACKING_TOKENS
from tracking.stack import Bus, WebServer, timeline, wait_for

PAID_AT = datetime.now(UTC).isoformat()

pytestmark = pytest.mark.integration

#: Headers that may differ between two otherwise identical responses.
_VOLATILE = {"date"}


def _fingerprint(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in _VOLATILE}
    return response.status_code, response.content, headers


def _grant(bus: Bus, token: str, order_id: str, expires_at: datetime) -> None:
    now = datetime.now(UTC)
    record = {
        "type": "tracking_link_issued",
        "token_sha256": token_digest(token),
        "order_id": order_id,
        "expires_at": expires_at.isoformat(),
        "issued_by": "source:oms",
        "at": now.isoformat(),
    }
    bus.producer.send(
        bus.settings.topic(TRACKING_TOKENS),
        key=token_digest(token).encode(),
        value=orjson.dumps(bus.token_seal.seal(record)),
    )
    bus.producer.flush(timeout=10)


async def _first_error(url: str, origin: str, subscribe: dict[str, object]) -> tuple[str, int | None]:
    async with connect(url, origin=origin) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps(subscribe))
        message = await asyncio.wait_for(ws.recv(), 10)
        while json.loads(message)["type"] == "subscribed":
            message = await asyncio.wait_for(ws.recv(), 10)
        await asyncio.wait_for(ws.wait_closed(), 10)
        return str(message), ws.close_code


def test_every_dead_link_gets_the_same_not_found(web: WebServer, bus: Bus) -> None:
    order_id = "o-http-1"
    bus.order_update(order_id, 1, {"sku-a": {"status": "paid", "timeline": timeline(("paid", PAID_AT))}})
    live = web.issue_link(order_id)
    revoked = web.issue_link(order_id)
    web.revoke_link(revoked)
    now = datetime.now(UTC)
    expired = secrets.token_urlsafe(32)
    _grant(bus, expired, order_id, now - timedelta(minutes=1))
    # A grant published after the expired one: once it works, the expired one has been read.
    witness = secrets.token_urlsafe(32)
    _grant(bus, witness, "o-http-2", now + timedelta(hours=1))
    wait_for(lambda: httpx.get(f"{web.url}/t/{witness}").status_code == 200, 15, "the witness grant")

    assert httpx.get(f"{web.url}/t/{live}").status_code == 200
    dead = {
        "unknown": secrets.token_urlsafe(32),
        "expired": expired,
        "revoked": revoked,
        "malformed": "not a token!",
        "too long": "A" * 300,
        "order id instead of a token": order_id,
    }
    answers = {
        name: _fingerprint(httpx.get(f"{web.url}/t/{token}", headers={"Accept-Language": lang}))
        for (name, token), lang in zip(dead.items(), ["en", "zh-CN", "en-US,en", "fr", "zh", "en"], strict=False)
    }
    reference = answers["unknown"]
    assert reference[0] == 404
    for name, answer in answers.items():
        assert answer == reference, f"the {name} link answers differently"
    assert order_id.encode() not in reference[1]

    # On the socket too: another order's id with a valid token is the same 4404 as no token.
    ws_url = web.url.replace("http://", "ws://") + "/ws/track"
    unknown = asyncio.run(_first_error(ws_url, web.url, {"type": "subscribe", "token": dead["unknown"]}))
    foreign = asyncio.run(_first_error(ws_url, web.url, {"type": "subscribe", "token": live, "order_id": "o-http-2"}))
    assert unknown == foreign and unknown[1] == 4404


def test_page_headers_language_and_weight(web: WebServer, bus: Bus, artifacts_dir: Path) -> None:
    bus.order_update("o-http-3", 1, {"sku-a": {"status": "paid", "timeline": timeline(("paid", PAID_AT))}})
    token = web.issue_link("o-http-3")
    page = httpx.get(f"{web.url}/t/{token}", headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    csp = dict(part.split(" ", 1) for part in page.headers["content-security-policy"].split("; "))
    assert csp["script-src"] == "'self'" and csp["default-src"] == "'none'"
    assert csp["connect-src"].split() == ["'self'", f"ws://127.0.0.1:{web.port}", f"wss://127.0.0.1:{web.port}"]
    assert page.headers["content-language"] == "en" and '<html lang="en">' in page.text
    assert token not in page.text and "o-http-3" not in page.text  # the script reads the token from the URL

    chinese = httpx.get(f"{web.url}/t/{token}", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="zh-CN">' in chinese.text and "订单跟踪" in chinese.text
    switched = httpx.get(f"{web.url}/t/{token}?lang=en", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in switched.text

    with httpx.stream("GET", f"{web.url}/t/{token}", headers={"Accept-Encoding": "gzip"}) as response:
        assert response.headers["content-encoding"] == "gzip"
        weight = {"page.html (gzip)": len(b"".join(response.iter_raw()))}
    for url in re.findall(r'(?:href|src)="(/t/assets/[^"]+)"', page.text) + [
        # The prefecture outlines of one province (Zhejiang), as a parcel there fetches them.
        json.loads(re.search(r'id="tracking-config">(.*?)</script>', page.text, re.S).group(1))["areas"]["330000"][  # type: ignore[union-attr]
            "url"
        ]
    ]:
        with httpx.stream("GET", f"{web.url}{url}", headers={"Accept-Encoding": "gzip"}) as response:
            assert response.status_code == 200
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert response.headers["content-encoding"] == "gzip"
            wire = b"".join(response.iter_raw())
        weight[url.rsplit("/", 1)[-1] + " (gzip)"] = len(wire)
        stale = httpx.get(f"{web.url}{url.replace('/t/assets/', '/t/assets/0')}")
        assert stale.status_code == 404  # an old digest never gets new content under its name
    weight["total"] = sum(weight.values())
    (artifacts_dir / "page_weight.json").write_text(json.dumps(weight, indent=2) + "\n")
    assert weight["total"] < 60_000, weight
