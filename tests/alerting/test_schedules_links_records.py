"""Pure pieces: on-call schedules, signed links, matchers, durations, history records."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from alerting_testkit import T0

from alerting.decisions import AlertEvent, AlertEventType, HistoryTimes
from alerting.links import LinkAction, LinkSigner, sign_link, verify_link
from alerting.matchers import parse_matcher
from alerting.schedules import Override, Rotation, Schedule
from alerting.tier import Tier, next_tier
from config.durations import parse_duration
from stream.sinks.line_protocol import alert_event_line

NY = ZoneInfo("America/New_York")


def ny(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


def test_daily_rotation_hands_over_at_local_time_across_dst() -> None:
    schedule = Schedule(
        time_zone="America/New_York",
        rotations=(
            Rotation(participants=("a", "b"), shift=timedelta(days=1), handover=time(9), start=date(2025, 3, 7)),
        ),
    )
    assert schedule.on_call(ny(2025, 3, 7, 8, 59)) is None  # before the first shift
    assert schedule.on_call(ny(2025, 3, 7, 9, 0)) == "a"
    assert schedule.on_call(ny(2025, 3, 8, 8, 59)) == "a"
    assert schedule.on_call(ny(2025, 3, 8, 9, 0)) == "b"
    # DST starts 2025-03-09 02:00; the handover stays at 09:00 local (13:00 UTC, not 14:00).
    assert schedule.on_call(datetime(2025, 3, 9, 12, 59, tzinfo=UTC)) == "b"
    assert schedule.on_call(datetime(2025, 3, 9, 13, 0, tzinfo=UTC)) == "a"


def test_layers_and_overrides() -> None:
    weekly = Rotation(participants=("alice", "bob"), shift=timedelta(weeks=1), start=date(2025, 3, 3))
    daytime = Rotation(
        participants=("carol",),
        start=date(2025, 3, 3),
        active_between=(time(9), time(18)),
    )
    cover = Override(user="dave", start=ny(2025, 3, 4, 0, 0), end=ny(2025, 3, 5, 0, 0), replaces="alice")
    schedule = Schedule(time_zone="America/New_York", rotations=(weekly, daytime), overrides=(cover,))
    assert schedule.on_call(ny(2025, 3, 3, 20, 0)) == "alice"
    assert schedule.on_call(ny(2025, 3, 3, 12, 0)) == "carol"  # the daytime layer on top
    assert schedule.on_call(ny(2025, 3, 4, 20, 0)) == "dave"  # covers alice
    assert schedule.on_call(ny(2025, 3, 4, 12, 0)) == "carol"  # not carol's cover
    assert schedule.on_call(ny(2025, 3, 10, 20, 0)) == "bob"
    swap = Override(user="alice", start=ny(2025, 3, 10, 0, 0), end=ny(2025, 3, 11, 0, 0))
    assert schedule.on_call(ny(2025, 3, 10, 20, 0), (swap,)) == "alice"


def test_signed_links_verify_and_reject_tampering_and_expiry() -> None:
    secret = b"k" * 32
    signer = LinkSigner(secret, "https://radar.example.com/")
    url = signer.link("al-1", LinkAction.ACK, T0 + timedelta(hours=1))
    assert url.startswith("https://radar.example.com/api/v1/alerts/al-1/ack?expires=")
    expires = int((T0 + timedelta(hours=1)).timestamp())
    sig = sign_link(secret, "al-1", "ack", expires)
    assert f"sig={sig}" in url
    assert verify_link(secret, "al-1", "ack", expires, sig, T0)
    assert not verify_link(secret, "al-1", "resolve", expires, sig, T0)  # other action
    assert not verify_link(secret, "al-2", "ack", expires, sig, T0)  # other alert
    assert not verify_link(secret, "al-1", "ack", expires + 3600, sig, T0)  # extended expiry
    assert not verify_link(b"x" * 32, "al-1", "ack", expires, sig, T0)  # other key
    assert not verify_link(secret, "al-1", "ack", expires, sig, T0 + timedelta(hours=2))  # expired
    assert "kkkk" not in repr(signer) and "<secret>" in repr(signer)
    with pytest.raises(ValueError, match="32 bytes"):
        LinkSigner(b"short", "https://x")


def test_matchers_are_anchored() -> None:
    m = parse_matcher('region=~"east|south"')
    assert m.matches({"region": "east"}) and not m.matches({"region": "northeast"})
    assert parse_matcher('carrier!=""').matches({"carrier": "SF"})
    assert not parse_matcher('carrier!=""').matches({})
    assert parse_matcher('title="say \\"hi\\""').value == 'say "hi"'
    with pytest.raises(ValueError, match="bad regular expression"):
        parse_matcher('kind=~"("')


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("1d", 86400), ("250ms", 0.25), (90, 90)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_tier_hysteresis() -> None:
    hold = timedelta(minutes=10)
    assert next_tier(Tier.P3, Tier.P2, None, T0, hold) == (Tier.P2, None)
    tier, since = next_tier(Tier.P2, Tier.P3, None, T0, hold)
    assert (tier, since) == (Tier.P2, T0)
    assert next_tier(Tier.P2, Tier.P3, since, T0 + hold, hold) == (Tier.P3, None)


def test_history_record_for_topic_and_influx() -> None:
    record = AlertEvent(
        record_id="al-1/r7",
        alert_id="al-1",
        event=AlertEventType.ACKED,
        at=T0,
        tier=Tier.P2,
        incident_ids=("hub-1",),
        labels={"kind": "hub_stall", "region": "east"},
        by="bob",
        detail='say "hi"\nthere',
    )
    topic = record.to_dict()
    assert topic["event"] == "acked" and topic["by"] == "bob" and topic["at"] == "2025-03-03T10:00:00Z"
    line = alert_event_line(record)
    assert line.startswith("alert_events,event=acked,kind=hub_stall,region=east,tier=P2 ")
    assert 'alert_id="al-1"' in line  # ids are fields, never tags
    time_ns = int(T0.timestamp()) * 1_000_000_000
    assert 'detail="say \\"hi\\" there"' in line and line.endswith(f" {time_ns}")
    # Alerts of one kind and region fired at one instant (by one call, or by two calls
    # given the same now) share tags and time: distinct times keep their points apart.
    fired = [record.model_copy(update={"record_id": f"al-{n}/r1", "alert_id": f"al-{n}"}) for n in range(3)]
    stamps = HistoryTimes()
    times = stamps.times(fired[:2]) + stamps.times(fired[2:])
    assert times == [time_ns + n for n in range(3)]
    later = record.model_copy(update={"at": T0 + timedelta(seconds=1)})
    assert stamps.times([later]) == [later.time_ns]  # back on its own time
