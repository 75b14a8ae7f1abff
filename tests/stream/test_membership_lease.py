"""The membership lease: valid until a session after the last confirmed send, minus a margin."""

from __future__ import annotations

import pytest

from stream.kafka.membership_lease import MembershipLease


def test_never_renewed_is_not_valid() -> None:
    lease = MembershipLease(session_s=6.0, margin_s=2.0)
    assert not lease.ever_renewed
    assert not lease.valid(0.0)


def test_valid_until_session_minus_margin_after_the_send() -> None:
    lease = MembershipLease(session_s=6.0, margin_s=2.0)
    lease.renewed(100.0)
    assert lease.valid(100.0)
    assert lease.valid(103.99)
    assert not lease.valid(104.0)  # frozen for 4 s: the broker may expire us at 106


def test_an_older_renewal_does_not_shorten_the_lease() -> None:
    lease = MembershipLease(session_s=6.0, margin_s=2.0)
    lease.renewed(100.0)
    lease.renewed(99.0)  # a slow heartbeat response arriving late
    assert lease.valid(103.5)


@pytest.mark.parametrize("margin", [-1.0, 6.0, 7.0])
def test_margin_must_leave_some_lease(margin: float) -> None:
    with pytest.raises(ValueError, match="margin_s"):
        MembershipLease(session_s=6.0, margin_s=margin)
