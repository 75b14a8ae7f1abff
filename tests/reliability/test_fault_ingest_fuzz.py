"""Ingest fuzz: arbitrary JSON, NDJSON and bytes posted to a real running gateway.

``POST /api/v1/events`` with a valid API key must never answer 5xx: only one of the
documented statuses, and a well-formed JSON body whenever it says it is JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import Settings
from gateway.harness import answers_ready, web_process
from orderradar.devstack.process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "wms-" + "f" * 40
MAX_BODY = 8 * 1024
ALLOWED = {202, 207, 400, 413, 415, 422, 429}
HEADERS = {"X-Source": "wms", "Authorization": f"Bearer {KEY}"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)
FIELDS = ("seq", "qty", "lat", "lon", "carrier", "extra")
event_like = st.fixed_dictionaries(
    {
        "event_id": st.text(max_size=20),
        "order_id": st.text(max_size=20),
        "sku": st.text(max_size=10),
        "status": st.sampled_from(["paid", "picked", "delivered", "nope", ""]) | st.text(max_size=8),
        "event_time": st.sampled_from(["2026-11-11T10:00:00+08:00", "2026-11-11T10:00:00", "yesterday", ""]),
        "source": st.sampled_from(["wms", "carrier", ""]),
        "warehouse": st.text(max_size=8),
    },
    optional={name: json_values for name in FIELDS},
)
valid_event = st.builds(
    lambda n, status: {
        "event_id": f"fz-{n}",
        "order_id": f"o-fz-{n % 7}",
        "sku": "sku-1",
        "status": status,
        "event_time": "2026-11-11T10:00:00+08:00",
        "source": "wms",
        "warehouse": "SH-1",
    },
    st.integers(0, 10**9),
    st.sampled_from(["paid", "picked", "packed"]),
)
CONTENT_TYPES = [
    "application/json",
    "application/x-ndjson",
    "text/plain",
    "application/octet-stream",
    "application/json; charset=utf-8",
    "multipart/form-data",
    "",
]


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    # json.dumps, not orjson: integers beyond 64 bits must reach the server too.
    kind = draw(st.sampled_from(["valid", "mixed", "json", "event", "events", "ndjson", "bytes", "big"]))
    if kind == "valid":
        return dumps(draw(valid_event)), "application/json"
    if kind == "mixed":
        return dumps(draw(st.lists(valid_event | event_like, min_size=1, max_size=6))), "application/json"
    if kind == "json":
        return dumps(draw(json_values)), "application/json"
    if kind == "event":
        return dumps(draw(event_like)), "application/json"
    if kind == "events":
        return dumps(draw(st.lists(event_like, max_size=8))), "application/json"
    if kind == "ndjson":
        lines = draw(
            st.lists(st.one_of(event_like.map(dumps), json_values.map(dumps), st.binary(max_size=30)), max_size=8)
        )
        return b"\n".join(lines), "application/x-ndjson"
    if kind == "big":
        return b"[" + b",".join([dumps(draw(event_like))] * draw(st.integers(60, 200))) + b"]", "application/json"
    return draw(st.binary(max_size=600)), draw(st.sampled_from(CONTENT_TYPES))


@pytest.fixture
def gateway_url(stack_settings: Settings, tmp_path: Path) -> Iterator[str]:
    """``orderradar web`` as a child process (a gateway thread in this process would touch
    the global ``random`` while hypothesis draws, which hypothesis rejects)."""
    settings_ = stack_settings.with_overrides(ingest_keys={"wms": KEY})
    port = free_port()
    # A generous rate limit: the fuzz is about parsing; 429 stays allowed if it trips.
    process = web_process(
        settings_, port, tmp_path, ingest_rate_per_s=1000, ingest_burst=1000, max_body_bytes=MAX_BODY
    ).start()
    base = f"http://127.0.0.1:{port}"

    try:
        process.wait_ready(answers_ready(base), 60)
        yield base
    finally:
        process.stop()


def test_ingest_never_answers_5xx_to_arbitrary_bodies(gateway_url: str) -> None:
    seen: dict[int, int] = {}
    started = time.monotonic()
    with httpx.Client(base_url=gateway_url, timeout=30) as client:

        @settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(bodies())
        def post(body_and_type: tuple[bytes, str]) -> None:
            body, content_type = body_and_type
            headers = dict(HEADERS)
            if content_type:
                headers["Content-Type"] = content_type
            response = client.post("/api/v1/events", content=body, headers=headers)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code in ALLOWED, (response.status_code, response.text[:300], body[:200])
            if response.headers.get("content-type", "").startswith("application/json"):
                parsed: Any = orjson.loads(response.content)  # raises if malformed
                assert isinstance(parsed, (dict, list)), parsed

        post()
    print(
        f"ingest fuzz: {sum(seen.values())} posts in {time.monotonic() - started:.1f}s, "
        f"statuses {dict(sorted(seen.items()))}"
    )
    assert sum(seen.values()) >= 100
    assert 202 in seen and len(seen) >= 3, seen  # accepted and refused bodies were both exercised
