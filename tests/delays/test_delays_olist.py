"""The Olist sample through the product's own path, in process: the shipped mapping
(``config/import_mappings/olist.yaml``, as ``orderradar import`` reads it), the real SKU
state machine (``stream.core.lifecycle.apply_event``: whatever it refuses reaches the delays
engine as an ``IllegalTransition``, as in ``stream.stages.delays_stage``), the delays engine
with the shipped ``config/sla.yaml`` and the outcome of each order (``stream.core.outcomes``).

No filter of its own decides which events apply: the state machine does. The expectations
come from the CSV columns (Olist's rule: late = delivered on a later calendar day than the
promised date, Brasília time). The live-stack version of this check, through the broker,
the worker, InfluxDB and the API, is ``tests/acceptance/test_real_exports.py``.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from orderradar.import_command import read_rows
from stream.contract import OrderEvent
from stream.core.data_quality import IllegalTransition
from stream.core.delays_engine import DelaysEngine
from stream.core.importer import RowRejection, Skipped, load_mapping, map_row
from stream.core.lifecycle import Outcome, apply_event
from stream.core.order_state import OrderState, new_order
from stream.core.outcomes import order_outcome
from stream.core.sla import SlaPolicy, load_sla_rules

REPO = Path(__file__).resolve().parents[2]
# shared/ sits beside the repository (/work/shared here, the same in CI's clone)
OLIST = REPO.parent / "shared" / "data" / "events" / "olist" / "olist_events.csv"
MAPPING = REPO / "config" / "import_mappings" / "olist.yaml"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _csv_rows() -> list[dict[str, str]]:
    with OLIST.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _imported() -> list[OrderEvent]:
    mapping = load_mapping(MAPPING)
    events: list[OrderEvent] = []
    for number, row in read_rows(OLIST, mapping):
        assert not isinstance(row, RowRejection), row
        result = map_row(row, number, mapping, NOW)
        assert not isinstance(result, RowRejection), result
        if not isinstance(result, Skipped):
            events.append(result)
    return events


def _through_the_state_machine(
    events: list[OrderEvent],
) -> tuple[dict[str, OrderState], list[OrderEvent | IllegalTransition]]:
    orders: dict[str, OrderState] = {}
    out: list[OrderEvent | IllegalTransition] = []
    for event in events:
        order = orders.get(event.order_id) or new_order(event.order_id, 0)
        order, change = apply_event(order, event)
        orders[event.order_id] = order
        if change is None:
            continue
        if change.outcome is Outcome.ILLEGAL:
            before = change.before.status if change.before is not None else None
            out.append(IllegalTransition(event, before, change.illegal_reason or "illegal transition"))
        else:
            out.append(event)
    return orders, out


def test_olist_through_mapping_state_machine_and_engine_gives_the_csv_answers() -> None:
    rows = _csv_rows()
    imported = [r for r in rows if r["event_type"] != "order_purchased"]  # the mapping skips purchases
    delivered_rows = {r["order_id"]: r for r in imported if r["event_type"] == "delivered_to_customer"}
    csv_late = {o for o, r in delivered_rows.items() if r["event_time"][:10] > r["promised_time"][:10]}
    csv_late_days = {
        o: (datetime.fromisoformat(r["event_time"][:10]) - datetime.fromisoformat(r["promised_time"][:10])).days
        for o, r in delivered_rows.items()
        if o in csv_late
    }
    end = max(r["event_time"] for r in imported)  # local ISO without offset: string order is time order
    csv_open_past_promise = {
        r["order_id"] for r in imported if r["order_id"] not in delivered_rows and r["promised_time"][:10] < end[:10]
    }

    events = _imported()
    assert len(events) == len(imported)
    orders, handed = _through_the_state_machine(events)
    rules = load_sla_rules()

    # every delivery event is applied by the state machine (forward skips are legal)
    outcomes = {o: order_outcome(state, SlaPolicy(rules)) for o, state in orders.items()}
    assert {o for o, v in outcomes.items() if v.state == "delivered"} == set(delivered_rows)
    assert {o for o, v in outcomes.items() if v.late} == csv_late
    assert {o: v.late_days for o, v in outcomes.items() if v.late} == csv_late_days
    assert all(v.promise_rule == "promise-olist-date" for v in outcomes.values())

    engine = DelaysEngine(rules)
    late_delivered: set[str] = set()
    for i in range(0, len(handed), 500):
        result = engine.process(handed[i : i + 500])  # a clockless replay: event time only
        late_delivered |= {
            t.order_id for t in result.transitions if t.closed and t.promise_late and t.status == "delivered"
        }
    engine.advance_watermark(datetime.fromisoformat(end).replace(tzinfo=SAO_PAULO))
    open_past_promise = {v.order_id for v in engine.views() if not v.closed and v.promise_late}
    assert late_delivered == csv_late
    assert open_past_promise == csv_open_past_promise
    # the sample's documented figures (../shared/data/README.md)
    assert (len(delivered_rows), len(csv_late), sum(d >= 7 for d in csv_late_days.values())) == (3965, 274, 149)
