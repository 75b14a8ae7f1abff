"""The seal of web-tier records: pure logic (the broker path is in tests/tracking)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from dashboard.gateway.record_seal import RecordSeal, UnsealedRecord

SECRET = SecretStr("s" * 40)
RECORD = {"type": "tracking_link_issued", "token_sha256": "a" * 64, "order_id": "o-1"}


def test_a_sealed_record_opens_whatever_the_key_order() -> None:
    sealed = RecordSeal(SECRET, "tracking-tokens").seal(RECORD)
    reordered = dict(reversed(list(sealed.items())))
    assert RecordSeal(SECRET, "tracking-tokens").open(reordered) == RECORD


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: {k: v for k, v in r.items() if k != "seal"},
        lambda r: {**r, "order_id": "o-2"},
        lambda r: {**r, "extra": "field"},
        lambda r: {**r, "seal": r["seal"].upper()},
        lambda r: {**r, "seal": 42},
    ],
    ids=["no seal", "changed field", "added field", "altered seal", "seal not a string"],
)
def test_a_tampered_record_does_not_open(tamper: object) -> None:
    sealed = RecordSeal(SECRET, "tracking-tokens").seal(RECORD)
    with pytest.raises(UnsealedRecord):
        RecordSeal(SECRET, "tracking-tokens").open(tamper(sealed))  # type: ignore[operator]


def test_the_key_depends_on_the_secret_and_the_topic() -> None:
    sealed = RecordSeal(SECRET, "tracking-tokens").seal(RECORD)
    with pytest.raises(UnsealedRecord):
        RecordSeal(SecretStr("t" * 40), "tracking-tokens").open(sealed)
    with pytest.raises(UnsealedRecord):
        RecordSeal(SECRET, "orderradar-control").open(sealed)
    assert issubclass(UnsealedRecord, ValueError)  # the topic reader counts and logs it
