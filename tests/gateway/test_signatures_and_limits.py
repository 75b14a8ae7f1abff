"""Pure parts of ingest access control: HMAC signatures, token buckets, API keys, origins."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from starlette.datastructures import Headers

from dashboard.gateway.api_keys import authenticated_source
from dashboard.gateway.origin import origin_allowed
from dashboard.gateway.rate_limit import KeyedRateLimiter
from dashboard.gateway.signatures import SignatureVerdict, sign, verify

SECRET = b"s" * 32
BODY = b'[{"event_id": "e1"}]'


def test_a_signature_made_with_sign_verifies_and_any_change_breaks_it() -> None:
    header = sign(SECRET, 1_700_000_000, BODY)
    assert header.startswith("sha256=") and len(header) == len("sha256=") + 64
    ok = verify(SECRET, "1700000000", header, BODY, now=1_700_000_100, tolerance_s=300)
    assert ok is SignatureVerdict.VALID
    assert verify(SECRET, "1700000000", header, BODY + b" ", 1_700_000_100, 300) is SignatureVerdict.MISMATCH
    assert verify(b"x" * 32, "1700000000", header, BODY, 1_700_000_100, 300) is SignatureVerdict.MISMATCH
    # The timestamp is signed too: replaying the body with a fresh timestamp fails.
    assert verify(SECRET, "1700000050", header, BODY, 1_700_000_100, 300) is SignatureVerdict.MISMATCH


@pytest.mark.parametrize("now", [1_700_000_000 + 301, 1_700_000_000 - 301])
def test_signatures_outside_the_tolerance_are_stale_both_ways(now: int) -> None:
    header = sign(SECRET, 1_700_000_000, BODY)
    assert verify(SECRET, "1700000000", header, BODY, now, 300) is SignatureVerdict.STALE


@pytest.mark.parametrize(
    ("timestamp", "signature", "verdict"),
    [
        (None, "sha256=00", SignatureVerdict.MISSING),
        ("1700000000", None, SignatureVerdict.MISSING),
        ("yesterday", "sha256=00", SignatureVerdict.MALFORMED),
        ("1700000000", "md5=00", SignatureVerdict.MALFORMED),
    ],
)
def test_missing_or_malformed_headers_are_named(
    timestamp: str | None, signature: str | None, verdict: SignatureVerdict
) -> None:
    assert verify(SECRET, timestamp, signature, BODY, 1_700_000_000, 300) is verdict


def test_any_of_several_signatures_may_match_for_key_rotation() -> None:
    good = sign(SECRET, 1_700_000_000, BODY)
    header = f"sha256={'0' * 64}, {good}"
    assert verify(SECRET, "1700000000", header, BODY, 1_700_000_000, 300) is SignatureVerdict.VALID


def test_token_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    limiter = KeyedRateLimiter(rate_per_s=2.0, burst=3)
    assert [limiter.take("wms", now=100.0).allowed for _ in range(4)] == [True, True, True, False]
    denied = limiter.take("wms", now=100.0)
    assert not denied.allowed and denied.retry_after_s == pytest.approx(0.5)
    assert limiter.take("wms", now=100.5).allowed  # one token back after 1/rate seconds
    assert limiter.take("oms", now=100.5).allowed  # other keys have their own bucket


def test_the_limiter_forgets_the_least_recently_used_keys_beyond_its_bound() -> None:
    limiter = KeyedRateLimiter(rate_per_s=1.0, burst=1, max_keys=2)
    for key in ("a", "b", "c"):
        assert limiter.take(key, now=0.0).allowed
    assert limiter.take("a", now=0.0).allowed  # "a" was forgotten: a fresh, full bucket
    assert not limiter.take("c", now=0.0).allowed


def test_api_keys_identify_the_source_only_with_the_matching_key() -> None:
    keys = {"wms": SecretStr("wms-key-" + "x" * 24), "oms": SecretStr("oms-key-" + "y" * 24)}
    bearer = Headers({"x-source": "wms", "authorization": "Bearer wms-key-" + "x" * 24})
    header_key = Headers({"x-source": "oms", "x-api-key": "oms-key-" + "y" * 24})
    assert authenticated_source(bearer, keys) == "wms"
    assert authenticated_source(header_key, keys) == "oms"
    assert (
        authenticated_source(Headers({"x-source": "oms", "authorization": "Bearer wms-key-" + "x" * 24}), keys) is None
    )
    assert authenticated_source(Headers({"x-source": "tms", "x-api-key": "anything"}), keys) is None
    assert authenticated_source(Headers({"x-source": "wms"}), keys) is None


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "expected"),
    [
        (None, "gw:8080", [], True),  # not a browser
        ("http://gw:8080", "gw:8080", [], True),  # same host
        ("http://GW:8080", "gw:8080", [], True),
        ("https://track.example.com", "gw:8080", ["https://track.example.com"], True),
        ("https://track.example.com:443", "gw:8080", ["https://track.example.com"], True),
        ("https://evil.example", "gw:8080", ["https://track.example.com"], False),
        ("http://gw:9999", "gw:8080", [], False),
        ("null", "gw:8080", [], False),
        ("javascript:alert(1)", "gw:8080", [], False),
    ],
)
def test_origin_allow_list(origin: str | None, host: str, allowed: list[str], expected: bool) -> None:
    assert origin_allowed(origin, host, allowed) is expected
