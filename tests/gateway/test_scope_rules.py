"""The pure rules behind issue 16: who may revoke a link, plain-text names, HTTP dead letters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from dashboard.gateway.tracking_tokens import TrackingTokens
from orderradar.dlq_command import impersonates
from stream.contract import Problem, RejectCode, Rejection, plain_multiline, plain_text
from stream.core import dlq

NOW = datetime(2026, 11, 11, 8, tzinfo=UTC)


def test_a_source_may_revoke_only_the_links_it_issued() -> None:
    tokens = TrackingTokens()
    by_staff = tokens.issue("o-1", timedelta(hours=1), "manager", NOW)
    by_oms = tokens.issue("o-1", timedelta(hours=1), "source:oms", NOW)
    for issued in (by_staff, by_oms):
        tokens.apply(issued.record)
    assert tokens.revocation(by_staff.token, "source:oms", NOW, only_own=True) is None
    assert tokens.revocation(by_oms.token, "source:wms", NOW, only_own=True) is None
    assert tokens.revocation(by_oms.record.token_sha256, "source:oms", NOW, only_own=True) is not None
    assert tokens.revocation(by_oms.token, "oncall", NOW) is not None  # staff: any link


@pytest.mark.parametrize(
    "text", ["a\u200bb", "a\u200db", "\u202eevil", "a\x00", "a\x1b[31m", "a\tb", "a\u2028b", "\ufeffname", "a\u2060b"]
)
def test_control_and_invisible_characters_are_not_plain_text(text: str) -> None:
    with pytest.raises(ValueError, match="invisible character"):
        plain_text(text)


@pytest.mark.parametrize("text", ["Typhoon Doksuri", "上海 浦东仓", "Zürich\u00a0Nord", "O'Brien & Co. (east)", ""])
def test_names_in_any_script_are_plain_text(text: str) -> None:
    assert plain_text(text) == text


def test_a_comment_may_span_lines_but_nothing_else() -> None:
    assert plain_multiline("planned\nmaintenance") == "planned\nmaintenance"
    with pytest.raises(ValueError):
        plain_multiline("line\r\nbreak")


def test_http_dead_letters_name_their_sender_and_old_envelopes_still_decode() -> None:
    value = orjson.dumps({"event_id": "e-1", "order_id": "o-1", "source": "oms"})
    rejection = Rejection(RejectCode.SCHEMA, (Problem("source", "is 'oms' but the API key belongs to 'wms'"),))
    letter = dlq.dead_letter(rejection, dlq.http_coordinates(3, NOW), b"o-1", value, [], NOW, sender="wms")
    decoded = dlq.decode(dlq.encode(letter))
    assert decoded == letter and decoded.via_http and decoded.source.offset == 3 and decoded.sender == "wms"
    assert impersonates(decoded)
    own = dlq.dead_letter(
        rejection, dlq.http_coordinates(4, NOW), b"o-1", value.replace(b"oms", b"wms"), [], NOW, sender="wms"
    )
    assert not impersonates(own)

    bus = dlq.dead_letter(rejection, dlq.SourceCoordinates("order-events", 0, 7), b"o-1", value, [], NOW)
    envelope = orjson.loads(dlq.encode(bus))
    assert "sender" not in envelope  # bus letters keep the version-1 envelope unchanged
    assert dlq.decode(orjson.dumps(envelope)).sender is None and not impersonates(bus)
