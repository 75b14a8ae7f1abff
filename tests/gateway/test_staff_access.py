"""Staff login, role checks, actions published for the worker, and the /ws/warroom stream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from alerting.links import LinkAction, LinkSigner
from config.settings import Settings
from dashboard.gateway.staff import StaffDirectory
from gateway.harness import (
    FIRED,
    RunningGateway,
    SkuPlan,
    UpdateFeeder,
    known_orders,
    login,
    order_snapshot,
    read_topic,
    running_gateways,
    session_cookie,
)
from orderradar.devstack.waiting import wait_until
from stream.topics import ALERTS, CONTROL, ORDER_INCIDENTS, WARROOM_UPDATES

pytestmark = pytest.mark.integration

OMS_KEY = "oms-" + "o" * 40
ZONE = {
    "name": "Typhoon Doksuri",
    "geometry": {"type": "Polygon", "coordinates": [[[119.0, 24.0], [121.0, 24.0], [121.0, 26.5], [119.0, 24.0]]]},
    "ends_at": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
    "reason": "weather",
}
STAFF_ENDPOINTS = [
    ("GET", "/api/v1/me", None),
    ("GET", "/api/v1/orders/o-1", None),
    ("GET", "/api/v1/incidents", None),
    ("GET", "/api/v1/alerts", None),
    ("GET", "/api/v1/silences", None),
    ("GET", "/api/v1/disruptions", None),
    ("POST", "/api/v1/alerts/a-1/ack", {}),
    ("POST", "/api/v1/alerts/a-1/resolve", {}),
    ("POST", "/api/v1/silences", {"matchers": ['kind="hub_stall"'], "duration_s": 600}),
    ("DELETE", "/api/v1/silences/sil-1", None),
    ("POST", "/api/v1/disruptions", ZONE),
    ("DELETE", "/api/v1/disruptions/dz-1", None),
    ("POST", "/api/v1/tracking-links", {"order_id": "o-1"}),
    ("DELETE", "/api/v1/tracking-links/" + "t" * 43, None),
]


@pytest.fixture
def server(stack_settings: Settings, staff: StaffDirectory) -> Iterator[RunningGateway]:
    settings = stack_settings.with_overrides(ingest_keys={"oms": OMS_KEY})
    with running_gateways(settings, staff) as (gateway,):
        yield gateway


def request(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    return client.request(method, path, json=body) if body is not None else client.request(method, path)


def test_staff_endpoints_refuse_anonymous_calls_with_401(server: RunningGateway) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for method, path, body in STAFF_ENDPOINTS:
            response = request(client, method, path, body)
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.json()["error"] == "unauthenticated"

    async def warroom() -> int:
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect(server.ws_url("/ws/warroom"))
        return info.value.response.status_code

    assert asyncio.run(warroom()) == 401


def test_viewers_may_read_but_not_act(server: RunningGateway) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        assert login(client, "viewer").json() == {"username": "viewer", "role": "viewer"}
        for method, path, body in STAFF_ENDPOINTS:
            response = request(client, method, path, body)
            if method == "GET":
                assert response.status_code in (200, 404), (path, response.status_code)
            else:
                assert response.status_code == 403, (method, path, response.status_code)
                assert response.json()["error"] == "forbidden"


def test_login_sets_a_strict_http_only_cookie_and_rejects_wrong_passwords(server: RunningGateway) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        wrong = client.post("/api/v1/login", json={"username": "manager", "password": "guess"})
        nobody = client.post("/api/v1/login", json={"username": "mallory", "password": "guess"})
        assert wrong.status_code == nobody.status_code == 401 and wrong.json() == nobody.json()
        ok = login(client, "manager")
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert client.get("/api/v1/me").json()["role"] == "manager"
        assert client.post("/api/v1/logout").status_code == 204
        assert client.get("/api/v1/me").status_code == 401
        form = client.post(
            "/api/v1/login",
            content=b"username=manager&password=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 415  # no cross-site form posts


def test_acking_an_alert_publishes_the_command_and_an_audit_record(server: RunningGateway) -> None:
    async def fire() -> None:
        async with UpdateFeeder(server.settings) as feeder:
            await feeder.publish_json(ALERTS, "a-1", FIRED)

    asyncio.run(fire())
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        login(client, "oncall")
        wait_until(lambda: client.get("/api/v1/alerts").json()["count"] == 1, 20, what="alert listed")
        listed = client.get("/api/v1/alerts?status=firing").json()["items"]
        assert listed[0]["alert_id"] == "a-1" and listed[0]["tier"] == "P2"
        response = client.post("/api/v1/alerts/a-1/ack", json={})
        assert response.status_code == 202, response.text
        command_id = response.json()["command_id"]
        assert client.post("/api/v1/alerts/nope/ack", json={}).status_code == 404

    records = read_topic(
        server.settings, CONTROL, lambda rs: any(r["type"] == "audit" and r["action"] == "alert_ack" for r in rs)
    )
    ack = next(r for r in records if r["type"] == "alert_ack")
    assert ack["alert_id"] == "a-1" and ack["actor"] == "oncall" and ack["command_id"] == command_id
    audit = next(r for r in records if r["type"] == "audit" and r["action"] == "alert_ack")
    assert audit["actor"] == "oncall" and audit["subject"] == "a-1" and audit["outcome"] == "ok"


def test_signed_one_click_links_confirm_on_get_and_act_on_post(server: RunningGateway) -> None:
    asyncio.run(_publish(server, ALERTS, "a-1", FIRED))
    wait_until(lambda: server.gateway.warroom.get("alert", "a-1") is not None, 20)
    secret = server.settings.session_secret.get_secret_value().encode()
    link = LinkSigner(secret, server.base_url).link("a-1", LinkAction.ACK, datetime.now(UTC) + timedelta(hours=1))
    with httpx.Client(timeout=10) as client:
        page = client.get(link)
        assert page.status_code == 200 and "<form method=post" in page.text
        assert client.post(link).status_code == 202
        assert client.post(link.replace("sig=", "sig=0")).status_code == 403
    records = read_topic(server.settings, CONTROL, lambda rs: any(r["type"] == "alert_ack" for r in rs))
    assert next(r for r in records if r["type"] == "alert_ack")["actor"] == "signed-link"


async def _publish(server: RunningGateway, topic: str, key: str, value: dict[str, Any]) -> None:
    async with UpdateFeeder(server.settings) as feeder:
        await feeder.publish_json(topic, key, value)


def test_disruption_zones_are_commands_and_listed_from_the_control_topic(server: RunningGateway) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        login(client, "manager")
        bad = client.post("/api/v1/disruptions", json={**ZONE, "geometry": {"type": "Point", "coordinates": [1, 2]}})
        assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "geometry"
        created = client.post("/api/v1/disruptions", json=ZONE)
        assert created.status_code == 202
        zone_id = created.json()["disruption_id"]
        wait_until(lambda: client.get("/api/v1/disruptions").json()["count"] == 1, 20, what="zone listed")
        zone = client.get("/api/v1/disruptions").json()["items"][0]
        assert zone["disruption_id"] == zone_id and zone["created_by"] == "manager" and zone["reason"] == "weather"
        assert client.delete(f"/api/v1/disruptions/{zone_id}").status_code == 202
        wait_until(lambda: client.get("/api/v1/disruptions").json()["count"] == 0, 20, what="zone removed")
        silence = client.post("/api/v1/silences", json={"matchers": ["kind=hub"], "duration_s": 600})
        assert silence.status_code == 422 and "matchers" in silence.json()["problems"][0]["field"]
        assert (
            client.post(
                "/api/v1/silences", json={"matchers": ['region=~"east|north"'], "until_resolved": True}
            ).status_code
            == 202
        )
    records = read_topic(server.settings, CONTROL, lambda rs: any(r["type"] == "silence_create" for r in rs))
    silence_record = next(r for r in records if r["type"] == "silence_create")
    assert silence_record["matchers"] == ['region=~"east|north"'] and silence_record["actor"] == "manager"


def test_sources_issue_tracking_links_with_their_api_key(server: RunningGateway) -> None:
    url = f"{server.base_url}/api/v1/tracking-links"
    known_orders([server], "o-5", source="oms")
    with httpx.Client(timeout=10) as client:
        ok = client.post(url, json={"order_id": "o-5", "ttl": 3600}, headers={"X-Source": "oms", "X-Api-Key": OMS_KEY})
        assert ok.status_code == 201 and ok.json()["order_id"] == "o-5"
        wrong = client.post(url, json={"order_id": "o-5"}, headers={"X-Source": "oms", "X-Api-Key": "nope"})
        assert wrong.status_code == 401
    assert server.gateway.tracking_token_valid(ok.json()["token"])
    records = read_topic(server.settings, "tracking-tokens", lambda rs: len(rs) >= 1)
    assert records[0]["token_sha256"] == ok.json()["token_id"] and ok.json()["token"] not in str(records)
    assert records[0]["issued_by"] == "source:oms"


def test_staff_see_the_full_internal_order(server: RunningGateway) -> None:
    async def publish() -> None:
        async with UpdateFeeder(server.settings) as feeder:
            await feeder.publish(order_snapshot("o-1", 4, {"a": SkuPlan(["paid", "linehaul"])}))

    asyncio.run(publish())
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        login(client, "viewer")
        wait_until(lambda: client.get("/api/v1/orders/o-1").status_code == 200, 20, what="order cached")
        order = client.get("/api/v1/orders/o-1").json()
        assert order["seq"] == 4 and order["skus"]["a"]["node"] == "HUB-SECRET-7"
        assert client.get("/api/v1/orders/o-404").status_code == 404


def test_the_warroom_stream_needs_a_session_and_sends_snapshot_updates_and_resumes(server: RunningGateway) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        login(client, "viewer")
        cookie = session_cookie(client)
    url = server.ws_url("/ws/warroom")

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(url, additional_headers={"Cookie": cookie, "Origin": "https://evil.example"})
        assert refused.value.response.status_code == 403
        async with UpdateFeeder(server.settings) as feeder:
            await feeder.publish_json(WARROOM_UPDATES, "kpis", {"type": "kpis", "key": "global", "in_flight": 10})
            await asyncio.to_thread(wait_until, lambda: server.gateway.warroom.seq >= 1, 20)
            async with websockets.connect(url, additional_headers={"Cookie": cookie}) as ws:
                await ws.send('{"type": "subscribe"}')
                hello = orjson.loads(await ws.recv())
                assert hello["type"] == "subscribed" and hello["user"] == "viewer"
                snapshot = orjson.loads(await ws.recv())
                assert snapshot["type"] == "snapshot" and snapshot["channels"]["kpis"]["global"]["in_flight"] == 10
                epoch = snapshot["epoch"]
                await feeder.publish_json(
                    WARROOM_UPDATES, "c", {"type": "heatmap", "cell": "8531aa4ffffffff", "late": 3}
                )
                await feeder.publish_json(
                    ORDER_INCIDENTS,
                    "inc-1",
                    {"incident_id": "inc-1", "state": "open", "kind": "hub_stall", "title": "Hub stalled"},
                )
                await feeder.publish_json(ALERTS, "a-1", FIRED)
                seen: dict[str, Any] = {}
                last_seq = snapshot["seq"]
                while len(seen) < 3:
                    update = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
                    assert update["type"] == "update" and update["seq"] > last_seq
                    last_seq = update["seq"]
                    seen[update["channel"]] = update
                assert seen["heatmap"]["key"] == "8531aa4ffffffff" and seen["incident"]["data"]["state"] == "open"
                assert seen["alert"]["data"]["status"] == "firing"
                await ws.send('{"type": "ping"}')
                assert orjson.loads(await ws.recv()) == {"type": "pong", "seq": last_seq}
            await feeder.publish_json(WARROOM_UPDATES, "kpis", {"type": "kpis", "key": "global", "in_flight": 11})
            await asyncio.to_thread(wait_until, lambda: server.gateway.warroom.seq > last_seq, 20)
            async with websockets.connect(url, additional_headers={"Cookie": cookie}) as ws:
                await ws.send(orjson.dumps({"type": "subscribe", "epoch": epoch, "last_seq": last_seq}).decode())
                assert orjson.loads(await ws.recv())["type"] == "subscribed"
                replayed = orjson.loads(await ws.recv())
                assert replayed["type"] == "update" and replayed["data"]["in_flight"] == 11

    asyncio.run(scenario())
