"""Tracking-token grants and staff accounts (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerting.redaction import redact
from config.rules import RuleFileError
from dashboard.gateway.staff import Permission, Role, StaffDirectory, StaffMember, hash_password
from dashboard.gateway.tracking_tokens import TrackingTokens, parse_record, token_digest

NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)


def test_a_token_has_256_random_bits_and_only_its_digest_is_published() -> None:
    tokens = TrackingTokens()
    issued = tokens.issue("o-1", timedelta(days=1), "alice", NOW)
    assert len(issued.token) >= 43  # token_urlsafe(32)
    record = issued.record.model_dump(mode="json")
    assert issued.token not in str(record) and record["token_sha256"] == token_digest(issued.token)
    assert tokens.lookup(issued.token, NOW) is None  # not applied yet
    tokens.apply(parse_record(record))
    assert tokens.lookup(issued.token, NOW) == "o-1"


def test_expired_revoked_unknown_and_other_orders_tokens_all_answer_none() -> None:
    tokens = TrackingTokens()
    issued = tokens.issue("o-1", timedelta(hours=1), "alice", NOW)
    tokens.apply(issued.record)
    assert tokens.lookup(issued.token, NOW, order_id="o-1") == "o-1"
    assert tokens.lookup(issued.token, NOW, order_id="o-2") is None
    assert tokens.lookup(issued.token, NOW + timedelta(hours=1)) is None
    assert tokens.lookup("x" * 43, NOW) is None and tokens.lookup("", NOW) is None
    revocation = tokens.revocation(issued.record.token_sha256, "bob", NOW)  # by public id
    assert revocation is not None
    tokens.apply(revocation)
    assert tokens.lookup(issued.token, NOW) is None
    assert tokens.revocation(issued.token, "bob", NOW) is None  # already revoked


def test_replaying_the_records_is_idempotent_and_pruning_forgets_dead_grants() -> None:
    tokens = TrackingTokens()
    issued = tokens.issue("o-1", timedelta(hours=1), "alice", NOW)
    for _ in range(2):
        tokens.apply(issued.record)
    assert len(tokens) == 1
    assert tokens.prune(NOW + timedelta(hours=2)) == 0  # kept a day after expiry
    assert tokens.prune(NOW + timedelta(days=2)) == 1 and len(tokens) == 0


def test_unknown_record_types_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown tracking-token record type"):
        parse_record({"type": "tracking_link_borrowed"})


def test_passwords_verify_only_with_the_right_password_and_unknown_users_fail_alike() -> None:
    directory = StaffDirectory.load(Path(__file__).resolve().parents[2] / "config" / "staff.example.yaml")
    member = directory.authenticate("manager", "orderradar-demo")
    assert member == StaffMember("manager", Role.MANAGER)
    assert directory.authenticate("manager", "orderradar-dem0") is None
    assert directory.authenticate("nobody", "orderradar-demo") is None
    assert hash_password("x", salt=b"s" * 16) == hash_password("x", salt=b"s" * 16)
    assert hash_password("x") != hash_password("x")  # random salt


def test_roles_grant_what_the_brief_says() -> None:
    manager, oncall, viewer = (StaffMember("u", r) for r in (Role.MANAGER, Role.ON_CALL, Role.VIEWER))
    assert all(manager.can(p) for p in Permission)
    assert oncall.can(Permission.ACT_ON_ALERTS) and oncall.can(Permission.ISSUE_TRACKING_LINKS)
    assert viewer.can(Permission.VIEW) and not viewer.can(Permission.ACT_ON_ALERTS)
    assert not viewer.can(Permission.ISSUE_TRACKING_LINKS)


def test_a_bad_staff_file_names_the_field_and_problem(tmp_path: Path) -> None:
    path = tmp_path / "staff.yaml"
    path.write_text("users:\n  eve:\n    role: admin\n    password: plaintext\n")
    with pytest.raises(RuleFileError) as info:
        StaffDirectory.load(path)
    message = str(info.value)
    assert "users.eve.role" in message and "users.eve.password" in message and "scrypt" in message


def test_access_logs_never_show_tracking_tokens() -> None:
    assert redact("GET /t/AbC-123_xyz?lang=en HTTP/1.1") == "GET /t/<redacted>?lang=en HTTP/1.1"
    assert redact("/api/v1/tracking-links/AbC") == "/api/v1/tracking-links/<redacted>"
    assert redact("/api/v1/orders/o-1") == "/api/v1/orders/o-1"
