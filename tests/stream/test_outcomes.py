"""Order outcomes against the promise (``stream.core.outcomes``), the outcome stage's points, and
the delivery-stats shaping of the API (pure parts; the live path is tests/acceptance)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pandas as pd
import pytest

from dashboard.gateway.delivery_stats import StatsRequestError, parse_query, shape
from dashboard.gateway.order_snapshot import OrderSnapshot
from stream.contract import OrderEvent
from stream.core.lifecycle import apply_event
from stream.core.order_state import OrderState, new_order
from stream.core.outcomes import OUTCOME_EXTENSION, order_outcome
from stream.core.rollup import order_snapshot
from stream.core.sla import SlaPolicy, load_sla_rules
from stream.stage_api import Accepted, BatchContext, SourceRecord
from stream.stages.outcome_stage import OutcomeStage

SP = ZoneInfo("America/Sao_Paulo")
RULES = load_sla_rules()
PROMISE = datetime(2017, 5, 10, tzinfo=SP)  # a date: the end of 10 May counts


def event(
    n: int,
    status: str,
    at: datetime,
    *,
    sku: str = "a",
    channel: str = "olist",
    promised: datetime | None = PROMISE,
    region: str | None = "SP",
) -> OrderEvent:
    return OrderEvent(
        event_id=f"e{n}",
        order_id="o1",
        sku=sku,
        status=status,
        event_time=at,
        source="olist",
        channel=channel,
        region=region,
        promised_by=promised,
    )


def fold(*events: OrderEvent) -> OrderState:
    order = new_order("o1", 3)
    for e in events:
        order, _ = apply_event(order, e)
    return order


def outcome(*events: OrderEvent):  # type: ignore[no-untyped-def]
    return order_outcome(fold(*events), SlaPolicy(RULES))


def test_a_date_only_promise_ends_at_local_midnight() -> None:
    on_time = outcome(
        event(1, "paid", datetime(2017, 5, 1, tzinfo=SP)),
        event(2, "delivered", datetime(2017, 5, 10, 23, 59, tzinfo=SP)),
    )
    assert on_time.state == "delivered" and on_time.late is False and on_time.late_days == 0
    assert on_time.counters() == {"delivered": 1, "on_time": 1, "late": 0, "late_7d": 0, "no_promise": 0, "open": 0}
    late = outcome(
        event(1, "paid", datetime(2017, 5, 1, tzinfo=SP)), event(2, "delivered", datetime(2017, 5, 11, 0, 0, tzinfo=SP))
    )
    assert late.late is True and late.late_days == 1 and late.late_by_s == 0


def test_late_by_seven_calendar_days_or_more() -> None:
    six = outcome(event(1, "delivered", datetime(2017, 5, 16, 23, 0, tzinfo=SP)))
    seven = outcome(event(1, "delivered", datetime(2017, 5, 17, 0, 30, tzinfo=SP)))
    assert (six.late_days, six.counters()["late_7d"]) == (6, 0)
    assert (seven.late_days, seven.counters()["late_7d"]) == (7, 1)


def test_an_order_is_delivered_when_its_last_line_is() -> None:
    first = event(1, "delivered", datetime(2017, 5, 9, tzinfo=SP), sku="a")
    open_ = outcome(first, event(2, "outbound_scan", datetime(2017, 5, 8, tzinfo=SP), sku="b"))
    assert open_.state == "open" and open_.anchor_ns == open_.due_ns
    done = outcome(first, event(2, "delivered", datetime(2017, 5, 12, tzinfo=SP), sku="b"))
    assert done.state == "delivered" and done.late is True and done.anchor_ns == done.delivered_ns
    cancelled = outcome(
        event(1, "paid", datetime(2017, 5, 1, tzinfo=SP)), event(2, "cancelled", datetime(2017, 5, 2, tzinfo=SP))
    )
    assert cancelled.state == "cancelled" and cancelled.anchor_ns is None


def test_without_a_promise_or_without_the_date_rule() -> None:
    none = outcome(event(1, "delivered", datetime(2017, 5, 12, tzinfo=SP), promised=None))
    assert none.counters()["no_promise"] == 1 and none.late is None
    # another channel: the promise is an instant (midnight), not a day
    exact = outcome(event(1, "delivered", datetime(2017, 5, 10, 9, 0, tzinfo=SP), channel="shop"))
    assert exact.late is True and exact.late_days == 0


def _run_stage(stage: OutcomeStage, store: dict[str, object], *events: OrderEvent) -> BatchContext:
    ctx = BatchContext(datetime.now(UTC), (), store, {})
    for offset, e in enumerate(events, start=100):
        order = ctx.order(e.order_id) or new_order(e.order_id, 3)
        order, change = apply_event(order, e)
        assert change is not None
        ctx.orders[e.order_id] = order
        ctx.accepted.append(Accepted(SourceRecord("t", 3, offset, None, b"o1", b"", ()), e, change))
    asyncio.run(stage.process(ctx))
    store.update(ctx.orders)
    return ctx


def test_the_stage_retires_the_open_point_when_the_order_is_delivered() -> None:
    stage, store = OutcomeStage(RULES), {}
    first = _run_stage(stage, store, event(1, "paid", datetime(2017, 5, 1, tzinfo=SP)))
    (open_line,) = first.lines
    assert "open=1i" in open_line and "partition=3" in open_line and "region=SP" in open_line
    again = _run_stage(stage, store, event(2, "delivered", datetime(2017, 5, 20, tzinfo=SP)))
    retired, delivered = again.lines
    assert retired.split(" ")[0] == open_line.split(" ")[0] and retired.split(" ")[2] == open_line.split(" ")[2]
    assert "current=0i" in retired and "open=0i" in retired and "delivered=0i" in retired
    assert "delivered=1i" in delivered and "late=1i" in delivered and "late_7d=1i" in delivered
    assert delivered.split(" ")[2].endswith("000100")  # the first record's offset keeps orders apart
    snapshot = OrderSnapshot.model_validate(orjson.loads(orjson.dumps(order_snapshot(again.orders["o1"]))))
    lateness = snapshot.lateness()
    assert lateness is not None and lateness.late is True and lateness.late_days == 10
    assert OUTCOME_EXTENSION in snapshot.extensions


def test_replaying_the_same_events_writes_the_same_lines() -> None:
    events = (event(1, "paid", datetime(2017, 5, 1, tzinfo=SP)), event(2, "delivered", datetime(2017, 5, 9, tzinfo=SP)))
    one = _run_stage(OutcomeStage(RULES), {}, *events).lines
    two = _run_stage(OutcomeStage(RULES), {}, *events).lines
    assert one == two and len(one) == 1 and "on_time=1i" in one[0]


def test_parse_query_names_the_bad_parameter() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    q = parse_query({"since": "2017-01-01", "until": "2018-01-01T00:00:00-03:00", "by": "region"}, now)
    assert q.since == datetime(2017, 1, 1, tzinfo=UTC) and q.until.hour == 3 and q.by == "region"
    assert parse_query({}, now).since == now - timedelta(days=7)
    for params, word in (
        ({"by": "city"}, "by"),
        ({"since": "2017-13-01"}, "since"),
        ({"until": "2017-01-01T00:00:00"}, "UTC offset"),
        ({"limit": "3"}, "unknown"),
        ({"since": "2018-01-01", "until": "2017-01-01"}, "before"),
    ):
        with pytest.raises(StatsRequestError, match=word):
            parse_query(params, now)


def test_shape_sums_groups_and_rates() -> None:
    delivered = pd.DataFrame(
        [
            {"region": "SP", "delivered": 3, "on_time": 2, "late": 1, "late_7d_or_more": 1, "no_promise": 0},
            {"region": "", "delivered": 1, "on_time": 0, "late": 0, "late_7d_or_more": 0, "no_promise": 1},
        ]
    )
    opened = pd.DataFrame([{"region": "RJ", "open_past_promise": 2}])
    total, groups = shape([delivered, opened], "region")
    assert total == {
        "delivered": 4,
        "on_time": 2,
        "late": 1,
        "late_7d_or_more": 1,
        "no_promise": 1,
        "open_past_promise": 2,
        "on_time_rate": 0.6667,
    }
    assert [g["region"] for g in groups] == ["SP", None, "RJ"]
    assert groups[1]["on_time_rate"] is None
