"""Events rejected by POST /api/v1/events are dead-lettered like bus rejects (issue 16, item 6)
and ``orderradar dlq`` lists and re-drives them; names with control or invisible characters
are refused with a 422 naming the field (item 7)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator

import httpx
import orjson
import pytest
from stream_harness import read_topic as stream_read_topic

from config.settings import Settings
from dashboard.gateway.staff import StaffDirectory
from gateway.harness import RunningGateway, ingest_event, login, read_topic, running_gateways
from orderradar import dlq_command
from stream.core import dlq
from stream.topics import CONTROL, ORDER_EVENTS, ORDER_EVENTS_DLQ

pytestmark = pytest.mark.integration

WMS_KEY = "wms-" + "k" * 40


def wms() -> dict[str, str]:
    return {"X-Source": "wms", "Authorization": f"Bearer {WMS_KEY}"}


event = ingest_event


@pytest.fixture
def server(stack_settings: Settings, staff: StaffDirectory) -> Iterator[RunningGateway]:
    with running_gateways(stack_settings.with_overrides(ingest_keys={"wms": WMS_KEY}), staff) as (gateway,):
        yield gateway


def run_dlq(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    dlq_command.add_arguments(parser)
    code = dlq_command.run(parser.parse_args(list(argv)), settings)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_rejected_events_of_a_batch_are_dead_lettered_listed_and_redriven(
    server: RunningGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        orjson.dumps(event(1)),
        orjson.dumps(event(2, status="teleported")),  # fixable: a contract/producer bug
        orjson.dumps(event(3, source="oms")),  # another source's name: never re-driven
        b'{"event_id": "e-4", "order_id": "o-4", broken',  # not JSON
    ]
    response = httpx.post(
        f"{server.base_url}/api/v1/events",
        content=b"\n".join(lines),
        timeout=30,
        headers={**wms(), "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 207 and response.json()["rejected"] == 3

    settings = server.settings
    records = read_topic(settings, ORDER_EVENTS_DLQ, lambda rs: len(rs) >= 3)
    letters = sorted((dlq.decode(orjson.dumps(r)) for r in records), key=lambda x: x.source.offset)
    assert [(x.source.offset, x.code, x.sender, x.via_http) for x in letters] == [
        (1, "schema", "wms", True),
        (2, "schema", "wms", True),
        (3, "not_json", "wms", True),
    ]
    assert [x.value for x in letters] == lines[1:]  # the bytes as received
    assert [x.key for x in letters] == [b"o-2", b"o-3", None]  # keyed by order when it was readable
    assert letters[0].reason["problems"][0]["field"] == "status"
    assert letters[1].reason["problems"][0]["field"] == "source"

    code, out, _ = run_dlq(settings, capsys, "list", "--sender", "wms", "--json", "--limit", "0")
    listed = [orjson.loads(line) for line in out.splitlines()]
    assert code == 0 and sorted((x["code"], x["sender"], x["event_id"] or "") for x in listed) == [
        ("not_json", "wms", ""),
        ("schema", "wms", "e-2"),
        ("schema", "wms", "e-3"),
    ]
    code, out, _ = run_dlq(settings, capsys, "list")
    assert code == 0 and out.count("http:wms") == 3

    code, out, err = run_dlq(settings, capsys, "redrive", "--sender", "wms")
    assert code == 0 and "re-drove 2 records" in out
    impostor = next(x for x in listed if x["event_id"] == "e-3")
    assert "refusing 1" in err and impostor["at"] in err
    redriven = {
        (r.key, r.value)
        for r in asyncio.run(stream_read_topic(settings, settings.topic(ORDER_EVENTS)))
        if any(name == dlq_command.REDRIVEN_HEADER for name, _ in r.headers)
    }
    assert redriven == {(b"o-2", lines[1]), (None, lines[3])}  # the impostor stays dead-lettered


def test_names_with_control_or_invisible_characters_are_refused(server: RunningGateway) -> None:
    zone = {"name": "Typhoon", "regions": ["east"], "ends_at": "2030-01-01T00:00:00+00:00", "reason": "weather"}
    silence = {"matchers": ['kind="hub_stall"'], "until_resolved": True, "comment": "planned\nmaintenance"}
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        assert login(client, "manager").status_code == 200
        for field, value in (
            ("name", "Typh\u200boon"),
            ("reason", "weather\u202e"),
            ("regions", ["ea\x07st"]),
            ("note", "call \x1b[31mnow"),
        ):
            response = client.post("/api/v1/disruptions", json={**zone, field: value})
            assert response.status_code == 422, (field, response.text)
            assert [p["field"] for p in response.json()["problems"]] == [field]
            assert "invisible character" in response.json()["problems"][0]["problem"]
        for field, value in (("comment", "ok\u2028then"), ("matchers", ['kind="hub\u200d_stall"'])):
            response = client.post("/api/v1/silences", json={**silence, field: value})
            assert response.status_code == 422 and response.json()["problems"][0]["field"] == field, response.text
        assert client.post("/api/v1/disruptions", json=zone).status_code == 202
        assert client.post("/api/v1/silences", json=silence).status_code == 202
    wanted = {"disruption_create", "silence_create"}
    records = read_topic(server.settings, CONTROL, lambda rs: sum(r["type"] in wanted for r in rs) >= 2)
    assert [r["type"] for r in records if r["type"] in wanted] == ["disruption_create", "silence_create"]

    names = [event(10, node="HUB\u200b7"), event(11, carrier="SF\u0000"), event(12, source="wms\u2060")]
    response = httpx.post(f"{server.base_url}/api/v1/events", json=names, headers=wms(), timeout=30)
    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(0, "node"), (1, "carrier"), (2, "source")]
