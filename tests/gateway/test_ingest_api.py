"""POST /api/v1/events against a real server and broker: accepted events are on the bus."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from config.settings import Settings
from dashboard.gateway.signatures import sign
from dashboard.gateway.staff import StaffDirectory
from gateway.harness import RunningGateway, ingest_event, running_gateways
from stream.contract import OrderEvent
from stream.topics import ORDER_EVENTS

pytestmark = pytest.mark.integration

WMS_KEY = "wms-" + "k" * 40
CARRIER_KEY = "carrier-" + "c" * 40
CARRIER_SECRET = "carrier-signing-" + "s" * 32


def event(i: int, source: str = "wms", **changes: Any) -> dict[str, Any]:
    return ingest_event(i, **{"order_id": f"o-{i % 3}", "source": source, **changes})


@pytest.fixture
def server(stack_settings: Settings, staff: StaffDirectory) -> Iterator[RunningGateway]:
    settings = stack_settings.with_overrides(ingest_keys={"wms": WMS_KEY, "carrier": CARRIER_KEY})
    with running_gateways(
        settings,
        staff,
        ingest_rate_per_s=0.5,
        ingest_burst=5,
        max_body_bytes=64 * 1024,
        signed_sources=frozenset({"carrier"}),
        signing_keys={"carrier": CARRIER_SECRET},
    ) as (gateway,):
        yield gateway


def wms(**headers: str) -> dict[str, str]:
    return {"X-Source": "wms", "Authorization": f"Bearer {WMS_KEY}", **headers}


def read_back(settings: Settings, count: int) -> list[tuple[bytes, bytes]]:
    async def consume() -> list[tuple[bytes, bytes]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
        )
        await consumer.start()
        topic = settings.topic(ORDER_EVENTS)
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        got: list[tuple[bytes, bytes]] = []
        try:
            async with asyncio.timeout(30):
                while len(got) < count:
                    for records in (await consumer.getmany(timeout_ms=300)).values():
                        got.extend((r.key or b"", r.value or b"") for r in records)
        finally:
            await consumer.stop()
        return got

    return asyncio.run(consume())


def test_a_good_batch_is_acknowledged_and_on_the_bus_keyed_by_order(server: RunningGateway) -> None:
    events = [event(i) for i in range(6)]
    response = httpx.post(f"{server.base_url}/api/v1/events", json=events, headers=wms(), timeout=30)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 6, "rejected": 0, "errors": [], "errors_truncated": False}
    records = read_back(server.settings, 6)
    expected = {(e["order_id"].encode(), OrderEvent.model_validate(e).to_json()) for e in events}
    assert set(records) == expected
    assert server.metric("orderradar_gateway_events_accepted_total", source="wms") == 6


def test_ndjson_batches_are_accepted_too(server: RunningGateway) -> None:
    body = b"\n".join(orjson.dumps(event(i)) for i in range(3)) + b"\n"
    response = httpx.post(
        f"{server.base_url}/api/v1/events",
        content=body,
        headers=wms(**{"Content-Type": "application/x-ndjson"}),
        timeout=30,
    )
    assert response.status_code == 202 and response.json()["accepted"] == 3
    assert len(read_back(server.settings, 3)) == 3


def test_a_mixed_batch_is_partially_accepted_with_reasons(server: RunningGateway) -> None:
    batch = [event(0), event(1, status="lost_in_space"), event(2), event(3, lat=10.0)]
    response = httpx.post(f"{server.base_url}/api/v1/events", json=batch, headers=wms(), timeout=30)
    assert response.status_code == 207, response.text
    body = response.json()
    assert body["accepted"] == 2 and body["rejected"] == 2
    problems = {(e["index"], e["event_id"], e["field"]) for e in body["errors"]}
    assert problems == {(1, "e-1", "status"), (3, "e-3", "(event)")}
    assert {v for _, v in read_back(server.settings, 2)} == {
        OrderEvent.model_validate(event(0)).to_json(),
        OrderEvent.model_validate(event(2)).to_json(),
    }


def test_a_batch_with_no_valid_event_is_422_and_publishes_nothing(server: RunningGateway) -> None:
    response = httpx.post(f"{server.base_url}/api/v1/events", json=[event(1, qty=0)], headers=wms(), timeout=30)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "qty"
    assert server.metric("orderradar_gateway_events_accepted_total", source="wms") == 0


def test_oversize_bodies_get_413_from_the_declared_length(server: RunningGateway) -> None:
    body = orjson.dumps([event(i, attributes={"pad": "x" * 200}) for i in range(400)])
    assert len(body) > 64 * 1024
    response = httpx.post(
        f"{server.base_url}/api/v1/events",
        content=body,
        headers=wms(**{"Content-Type": "application/json"}),
        timeout=30,
    )
    assert response.status_code == 413


def test_the_body_limit_holds_while_streaming_without_a_length(server: RunningGateway) -> None:
    """A chunked body is cut off at the limit: the 413 arrives although the client never
    finished sending (it cannot have been read whole first)."""
    head = (
        "POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-Source: wms\r\nAuthorization: Bearer {WMS_KEY}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"[" + b" " * 8190 + b"\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(head)
        for _ in range(10):  # 80 KiB > 64 KiB, and the terminating chunk is never sent
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def signed_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "X-Source": "carrier",
        "X-Api-Key": CARRIER_KEY,
        "Content-Type": "application/json",
        "X-Signature-Timestamp": str(ts),
        "X-Signature": sign(secret.encode(), ts, body),
    }


def test_signed_sources_need_a_valid_fresh_signature(server: RunningGateway) -> None:
    url = f"{server.base_url}/api/v1/events"
    body = orjson.dumps([event(1, source="carrier")])
    good = httpx.post(url, content=body, headers=signed_headers(body, CARRIER_SECRET), timeout=30)
    assert good.status_code == 202, good.text
    bad = httpx.post(url, content=body, headers=signed_headers(body, "not-the-secret"), timeout=30)
    assert bad.status_code == 401 and bad.json()["error"] == "signature_mismatch"
    stale = httpx.post(
        url, content=body, headers=signed_headers(body, CARRIER_SECRET, int(time.time()) - 301), timeout=30
    )
    assert stale.status_code == 401 and stale.json()["error"] == "signature_stale"
    unsigned = {"X-Source": "carrier", "X-Api-Key": CARRIER_KEY}
    missing = httpx.post(url, content=body, headers={**unsigned, "Content-Type": "application/json"}, timeout=30)
    assert missing.status_code == 401 and missing.json()["error"] == "signature_missing"
    tampered = httpx.post(
        url, content=body.replace(b"e-1", b"e-9"), headers=signed_headers(body, CARRIER_SECRET), timeout=30
    )
    assert tampered.status_code == 401


def test_missing_or_wrong_keys_are_401(server: RunningGateway) -> None:
    url = f"{server.base_url}/api/v1/events"
    for headers in (
        {},
        {"X-Source": "wms"},
        {"X-Source": "wms", "Authorization": "Bearer nope"},
        {"X-Source": "carrier", "Authorization": f"Bearer {WMS_KEY}"},
    ):
        response = httpx.post(url, json=[event(1)], headers=headers, timeout=30)
        assert response.status_code == 401 and "WWW-Authenticate" in response.headers


def test_a_flood_from_one_source_gets_429_with_retry_after(server: RunningGateway) -> None:
    url = f"{server.base_url}/api/v1/events"
    with httpx.Client(timeout=30) as client:
        statuses = [client.post(url, json=[event(i)], headers=wms()).status_code for i in range(12)]
        limited = client.post(url, json=[event(99)], headers=wms())
        other = client.post(
            url,
            content=b"[]",
            headers={"X-Source": "carrier", "X-Api-Key": CARRIER_KEY, "Content-Type": "application/json"},
        )
    assert statuses[:5] == [202] * 5 and 429 in statuses
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert other.status_code != 429  # other sources have their own budget


def test_other_content_types_are_415(server: RunningGateway) -> None:
    response = httpx.post(
        f"{server.base_url}/api/v1/events",
        content=b"status=paid",
        headers=wms(**{"Content-Type": "application/x-www-form-urlencoded"}),
        timeout=30,
    )
    assert response.status_code == 415
