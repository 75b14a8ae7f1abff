"""Times from the future on a feed whose event time trails the wall clock (the demo's
simulator, a source replaying its day): judged against the partition's event clock, they are
data-quality findings that move no clock, and the device sending them is named within
minutes while the flow checks go on (issue #18, the ``broken_scanner`` scenario)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from delays_traffic import HOUR, MIN, T0, Delivery, at, consume, make_event

from stream.contract import MAX_FUTURE_SKEW, OrderEvent, Problem, RejectCode, Rejection, Status
from stream.core.data_quality import DataQualityKind, future_rejection
from stream.core.delays_engine import DelaysEngine
from stream.core.dlq import SourceCoordinates, dead_letter
from stream.core.sla import DEFAULT_SLA_PATH, load_sla_rules
from stream.core.watermarks import Watermarks

RULES = load_sla_rules(DEFAULT_SLA_PATH)
#: The wall clock is this far ahead of the feed's event time (a simulator started at 21:00
#: China time in the morning).
TRAIL = 10 * HOUR
BAD = "YW-1-SCN-01"


def _r(seconds: float) -> float:
    """Receipt time ``seconds`` after T0, as the engine takes it (epoch seconds)."""
    return at(seconds).timestamp()


def _scan(n: int, seconds: float, **fields: object) -> OrderEvent:
    fields.setdefault("device_id", f"WH-2-SCN-{n % 4:02d}")
    fields.setdefault("node", "WH-2")
    return make_event(f"O{n}", Status.HUB_ARRIVAL, seconds, source="tms", **fields)


def test_an_event_far_ahead_of_its_partition_is_flagged_though_behind_the_wall_clock() -> None:
    engine = DelaysEngine(RULES)
    now = at(TRAIL)
    normal = [_scan(i, i * 10.0) for i in range(12)]
    engine.process(normal, now=now, received_at=[_r(TRAIL + i * 10.0) for i in range(12)])
    before = engine.watermark(0)
    ahead = _scan(99, 110 + 3 * HOUR, device_id=BAD)  # 3 h ahead, 7 h behind the receipt time
    within = _scan(100, 120 + 30 * MIN)  # half an hour ahead of its partition: not flagged
    result = engine.process([ahead], now=now, received_at=[_r(TRAIL + 120)])
    (finding,) = result.findings
    assert finding.kind is DataQualityKind.FUTURE_TIMESTAMP and finding.device_ids == (BAD,)
    assert "ahead of its partition's event time" in finding.detail
    # seen at the partition's event time (its records moved on by their receipt), not the wall clock
    assert finding.at == T0.timestamp() + 120
    assert engine.watermark(0) == before and engine.watermarks.newest(0) == T0.timestamp() + 110
    assert engine.process([within], now=now, received_at=[_r(TRAIL + 130)]).findings == []


def test_a_catch_up_and_a_quiet_partition_are_not_from_the_future() -> None:
    """A backfill sends hours of scans within seconds, in event-time order: each is a little
    later than the ones before. A partition quiet for hours is moved on by the receipt time."""
    engine = DelaysEngine(RULES)
    backfill = [_scan(i, i * 20 * MIN) for i in range(36)]  # 12 h of scans, received in 3.6 s
    result = engine.process(backfill, now=at(12 * HOUR), received_at=[_r(12 * HOUR + i / 10) for i in range(36)])
    assert result.findings == []
    assert engine.watermarks.newest(0) == T0.timestamp() + 35 * 20 * MIN
    later = _scan(50, 12 * HOUR + 3 * HOUR)  # three hours of silence, received at its time
    assert engine.process([later], now=at(15 * HOUR), received_at=[_r(15 * HOUR + 5)]).findings == []


def test_one_device_cannot_move_the_event_clock() -> None:
    marks = Watermarks(300.0, 60.0)
    for i in range(20):
        marks.observe(0, 1000.0 + i, 5000.0 + i, "tms")
        marks.note_record(0, 1000.0 + i, 5000.0 + i, f"SCN-{i % 3}")
        if i % 2 == 0:
            marks.note_record(0, 1000.0 + i + 7200, 5000.0 + i, BAD)  # two hours ahead
    # every other sender's records, moved on by their receipt, say 1020 at receipt 5020
    assert marks.event_clock(0, 5020.0) == 1020.0
    restored = Watermarks.from_dict(300.0, 60.0, marks.to_dict())
    assert restored.event_clock(0, 5020.0) == 1020.0
    older = {"0": {"watermark": 1.0, "sources": {}}}  # a snapshot from before the event clock
    assert Watermarks.from_dict(300.0, 60.0, older).event_clock(0, 5020.0) is None


def _demo_feed(minutes: int, switch: int) -> list[Delivery]:
    """Two partitions of hub scans, received ``TRAIL`` after their time. From minute
    ``switch`` hub WH-2 stops and scanner ``BAD`` (of hub YW-1) stamps its scans 2 to 9 h
    ahead, all within the wall clock's lead (accepted by the contract, not ahead of receipt)."""
    out: list[Delivery] = []
    n = 0
    for minute in range(minutes):
        for i in range(90):
            n += 1
            t = minute * MIN + i * MIN / 90
            hub = ("WH-2", "YW-1", "HZ-1")[i % 3]
            if hub == "WH-2" and minute >= switch:
                continue
            event = _scan(n, t, node=hub, device_id=f"{hub}-SCN-{i % 4:02d}")
            if hub == "YW-1" and i % 4 == 1 and minute >= switch:
                skew = 2 * HOUR + (n % 8) * HOUR
                event = event.model_copy(update={"event_time": event.event_time + timedelta(seconds=skew)})
            out.append(Delivery(t + TRAIL, n % 2, event))
    return out


def test_a_broken_scanner_is_named_within_minutes_and_the_flow_checks_go_on() -> None:
    engine = DelaysEngine(RULES)
    switch = 20
    run = consume(engine, _demo_feed(switch + 6, switch))
    opened = [r for r in run.incidents if r["type"] == "incident.opened"]
    quality = [r for r in opened if r["kind"] == "data_quality"]
    flow = [r for r in opened if r["kind"] == "flow"]
    assert [r["root_cause"] for r in quality] == [{"device_id": BAD}]
    assert [r["root_cause"] for r in flow] == [{"hub": "WH-2"}]
    for record in (*quality, *flow):
        # within 3 minutes of event time of the switch (the detectors' clocks did not jump)
        opened_at = datetime.fromisoformat(str(record["at"]))
        assert at(switch * MIN) < opened_at <= at((switch + 3) * MIN), record
    findings = [f for f in run.findings if f["device_ids"] == [BAD]]
    assert findings and all(f["kind"] == "future_timestamp" for f in findings)
    newest = max(engine.watermarks.newest(p) or 0.0 for p in (0, 1))
    assert newest < at((switch + 6) * MIN).timestamp()


def test_an_event_the_contract_rejected_names_its_device_and_moves_nothing() -> None:
    engine = DelaysEngine(RULES)
    engine.process(
        [_scan(i, i * 10.0) for i in range(10)], now=at(TRAIL), received_at=[_r(TRAIL + i * 10) for i in range(10)]
    )
    state = engine.watermarks.to_dict()
    wall = at(TRAIL + 100)
    event = _scan(77, 100 + TRAIL + 2 * 24 * HOUR, device_id=BAD)
    problem = Problem("event_time", f"is more than {MAX_FUTURE_SKEW} ahead of the receiver's clock")
    letter = dead_letter(
        Rejection(RejectCode.FUTURE_TIME, (problem,)),
        SourceCoordinates("order-events", 0, 10, int(wall.timestamp() * 1000)),
        b"O77",
        event.to_json(),
        (),
        wall,
    )
    rejected = future_rejection(letter)
    assert rejected is not None and rejected[0] == event
    result = engine.reject(rejected[0], partition=0, received=wall.timestamp(), reason=rejected[1])
    (finding,) = result.findings
    assert finding.kind is DataQualityKind.FUTURE_TIMESTAMP and finding.device_ids == (BAD,)
    assert finding.detail == "rejected: event_time is more than 1 day, 0:00:00 ahead of the receiver's clock"
    assert finding.at == T0.timestamp() + 100  # the partition's event time, not the wall clock's
    assert engine.watermarks.to_dict() == state
    schema = dead_letter(
        Rejection(RejectCode.SCHEMA, (Problem("lat", "bad"),)),
        SourceCoordinates("order-events", 0, 11, None),
        b"O78",
        b"{}",
        (),
        datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert future_rejection(schema) is None
