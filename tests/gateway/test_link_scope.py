"""Who may issue and revoke tracking links, for which orders (issue 16, items 5 and 7).

Through the real stack: a source's events go in over HTTP, the real worker turns them into
``order-updates``, and the gateway decides from what it read there whether the order exists
and which sources sent events for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from stream_harness import start_worker

from dashboard.gateway.staff import StaffDirectory
from gateway.harness import RunningGateway, login, running_gateways
from orderradar.devstack.isolation import isolated_settings
from orderradar.devstack.process import ManagedProcess
from orderradar.devstack.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEYS = {"oms": "oms-" + "o" * 40, "wms": "wms-" + "w" * 40}


def as_source(name: str) -> dict[str, str]:
    return {"X-Source": name, "Authorization": f"Bearer {KEYS[name]}"}


def event(order_id: str, source: str, n: int = 0) -> dict[str, Any]:
    return {
        "event_id": f"{order_id}-{source}-{n}",
        "order_id": order_id,
        "sku": "sku-1",
        "status": "paid",
        "event_time": datetime.now(UTC).isoformat(),
        "source": source,
    }


@pytest.fixture(scope="module")
def stack(
    broker: Any, influx: Any, tmp_path_factory: pytest.TempPathFactory, staff: StaffDirectory
) -> Iterator[RunningGateway]:
    settings = isolated_settings(broker.bootstrap, influx.url, influx.root.parent, ingest_keys=KEYS)
    worker: ManagedProcess = start_worker(settings, tmp_path_factory.mktemp("worker") / "worker.log")
    try:
        with running_gateways(settings, staff) as (server,):
            yield server
    finally:
        worker.stop()


def sent_and_processed(server: RunningGateway, order_id: str, source: str) -> None:
    """``source`` sends an event for ``order_id`` over HTTP; wait for the worker's update."""
    response = httpx.post(
        f"{server.base_url}/api/v1/events", json=[event(order_id, source)], headers=as_source(source), timeout=30
    )
    assert response.status_code == 202, response.text
    wait_until(lambda: server.gateway.orders.get(order_id) is not None, 90, what=f"worker update of {order_id}")


def link(server: RunningGateway, order_id: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/v1/tracking-links", json={"order_id": order_id}, headers=headers, timeout=10
    )


def test_a_source_issues_links_only_for_orders_it_sent_events_for(stack: RunningGateway) -> None:
    sent_and_processed(stack, "o-scope-1", "oms")
    assert link(stack, "o-scope-1", as_source("oms")).status_code == 201

    foreign = link(stack, "o-scope-1", as_source("wms"))
    assert foreign.status_code == 404, foreign.text
    assert foreign.json()["error"] == "unknown_order" and "'wms'" in foreign.json()["detail"]
    nowhere = link(stack, "o-never-sent", as_source("oms"))
    assert nowhere.status_code == 404 and "o-never-sent" in nowhere.json()["detail"]

    # Once wms has sent an event for the order too, it may issue links for it.
    sent_and_processed(stack, "o-scope-2", "oms")
    response = httpx.post(
        f"{stack.base_url}/api/v1/events", json=[event("o-scope-2", "wms", 1)], headers=as_source("wms"), timeout=30
    )
    assert response.status_code == 202
    wait_until(
        lambda: "wms" in stack.gateway.orders.get("o-scope-2").sources(),  # type: ignore[union-attr]
        90,
        what="wms event in the worker's update",
    )
    assert link(stack, "o-scope-2", as_source("wms")).status_code == 201


def test_links_only_for_orders_that_exist(stack: RunningGateway) -> None:
    sent_and_processed(stack, "o-exists-1", "oms")
    with httpx.Client(base_url=stack.base_url, timeout=10) as client:
        assert login(client, "manager").status_code == 200
        missing = client.post("/api/v1/tracking-links", json={"order_id": "o-made-up-42"})
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"] == "unknown_order" and "'o-made-up-42'" in missing.json()["detail"]
        assert client.post("/api/v1/tracking-links", json={"order_id": "o-exists-1"}).status_code == 201


def test_a_source_revokes_only_its_own_links(stack: RunningGateway) -> None:
    sent_and_processed(stack, "o-revoke-1", "oms")
    response = httpx.post(
        f"{stack.base_url}/api/v1/events", json=[event("o-revoke-1", "wms", 1)], headers=as_source("wms"), timeout=30
    )
    assert response.status_code == 202
    with httpx.Client(base_url=stack.base_url, timeout=10) as staff:
        assert login(staff, "manager").status_code == 200
        managers = staff.post("/api/v1/tracking-links", json={"order_id": "o-revoke-1"}).json()
    omss = link(stack, "o-revoke-1", as_source("oms")).json()
    omss_second = link(stack, "o-revoke-1", as_source("oms")).json()

    url = f"{stack.base_url}/api/v1/tracking-links/"
    for victim in (managers, omss):
        for name in ("token", "token_id"):
            taken = httpx.delete(url + victim[name], headers=as_source("wms"), timeout=10)
            assert taken.status_code == 404, (victim, name, taken.text)
        assert stack.gateway.tracking_token_valid(victim["token"])
    assert httpx.delete(url + managers["token"], headers=as_source("oms"), timeout=10).status_code == 404
    assert stack.gateway.tracking_token_valid(managers["token"])

    assert httpx.delete(url + omss["token"], headers=as_source("oms"), timeout=10).status_code == 204
    assert not stack.gateway.tracking_token_valid(omss["token"])
    with httpx.Client(base_url=stack.base_url, timeout=10) as staff:
        assert login(staff, "oncall").status_code == 200
        assert staff.delete(f"/api/v1/tracking-links/{omss_second['token_id']}").status_code == 204  # staff: any
    assert not stack.gateway.tracking_token_valid(omss_second["token"])
