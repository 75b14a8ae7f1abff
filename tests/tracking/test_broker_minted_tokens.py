"""Whoever can write to the broker cannot mint tracking links: only sealed records become grants.

A plain kafka-python producer (any broker client without the web tier's secret) writes
grant records straight to ``tracking-tokens``: unsealed, with a made-up seal, sealed with
another secret, and a genuine grant whose order was changed after sealing. None of them
opens a page; a sealed grant published after them does (so they were all read first). An
unsealed revocation does not close a live link either.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from pydantic import SecretStr

from dashboard.gateway.record_seal import RecordSeal
from dashboard.gateway.tracking_tokens import token_digest
from stream.topics import TRACKING_TOKENS
from tracking.stack import Bus, WebServer, wait_for

pytestmark = pytest.mark.integration


def _grant(token: str, order_id: str) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "type": "tracking_link_issued",
        "token_sha256": token_digest(token),
        "order_id": order_id,
        "expires_at": (now + timedelta(hours=1)).isoformat(),
        "issued_by": "source:oms",
        "at": now.isoformat(),
    }


def _produce(bus: Bus, record: dict[str, str]) -> None:
    bus.producer.send(
        bus.settings.topic(TRACKING_TOKENS), key=record["token_sha256"].encode(), value=orjson.dumps(record)
    )
    bus.producer.flush(timeout=10)


def test_records_written_straight_to_the_topic_are_not_grants(web: WebServer, bus: Bus) -> None:
    order_id = "o-minted-1"
    bus.order_update(order_id, 1, {"sku-a": {"status": "paid", "timeline": []}})
    topic = bus.settings.topic(TRACKING_TOKENS)
    other_secret = RecordSeal(SecretStr(secrets.token_urlsafe(32)), topic)
    forged = {name: secrets.token_urlsafe(32) for name in ("unsealed", "made-up seal", "other secret", "altered")}
    _produce(bus, _grant(forged["unsealed"], order_id))
    _produce(bus, {**_grant(forged["made-up seal"], order_id), "seal": "0" * 64})
    _produce(bus, other_secret.seal(_grant(forged["other secret"], order_id)))
    genuine_elsewhere = bus.token_seal.seal(_grant(forged["altered"], "o-minted-other"))
    _produce(bus, {**genuine_elsewhere, "order_id": order_id})

    # Sealed as the web tier seals: once it opens its page, every record above was read.
    witness = secrets.token_urlsafe(32)
    _produce(bus, bus.token_seal.seal(_grant(witness, order_id)))
    wait_for(lambda: httpx.get(f"{web.url}/t/{witness}").status_code == 200, 20, "the sealed grant")

    for name, token in forged.items():
        assert httpx.get(f"{web.url}/t/{token}").status_code == 404, f"the {name} record became a grant"
    # The gateway counted them as unusable records (and logged why), it did not drop them silently.
    metrics = httpx.get(f"{web.url}/metrics").text
    bad = [
        line
        for line in metrics.splitlines()
        if "records_invalid_total" in line and topic in line and not line.startswith("#")
    ]
    assert bad and float(bad[0].rsplit(" ", 1)[1]) >= len(forged), bad

    # Nor can a broker writer revoke a customer's link: an unsealed revocation is ignored.
    now = datetime.now(UTC).isoformat()
    _produce(
        bus,
        {"type": "tracking_link_revoked", "token_sha256": token_digest(witness), "revoked_by": "source:oms", "at": now},
    )
    second_witness = secrets.token_urlsafe(32)
    _produce(bus, bus.token_seal.seal(_grant(second_witness, order_id)))
    wait_for(lambda: httpx.get(f"{web.url}/t/{second_witness}").status_code == 200, 20, "the second sealed grant")
    assert httpx.get(f"{web.url}/t/{witness}").status_code == 200
