"""A flow incident's impact estimate (stream.core.flow_incidents): parcel scans behind, the
orders in flight at its key, the region it is in, and the fields the alert engine reads.

Pure: findings and times are passed in, the in-flight orders are SkuDelay states.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import h3
import pytest

from stream.core.flow_incidents import DROP, SURGE, Finding, FlowIncidents, InFlight, affected, in_flight
from stream.core.incident_model import AREA, Signature
from stream.core.sku_delay import SkuDelay, cluster_values

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
STEP = 60.0
HUB = Signature("hub", ("HZ-3",))


def stop(observed: int = 0, expected: float = 60.0, window: int = 3, sig: Signature = HUB) -> Finding:
    return Finding(DROP, sig, observed, expected, window, 1e-9)


def sku(order_id: str, line: str = "s1", **fields: Any) -> SkuDelay:
    return SkuDelay(
        key=f"{order_id}|{line}",
        order_id=order_id,
        sku=line,
        partition=0,
        status="hub_arrival",
        rank=5,
        status_since=T0 - 600,
        last_event=T0 - 600,
        **fields,
    )


def test_a_stopped_hubs_shortfall_grows_by_its_rate_every_slot_it_stays_stopped() -> None:
    incidents = FlowIncidents(STEP, resolve_after=300.0)
    [opened] = incidents.update(T0, [stop()])
    flow = opened.record["flow"]
    # 60 scans expected in the 3-minute window that opened it, none seen: 60 behind, 3 min long
    assert (flow["shortfall"], flow["duration_s"], flow["in_flight"]) == (60, 180.0, None)
    assert opened.record["counts"]["orders"] == 60  # no tracker: the estimate is the shortfall
    assert opened.record["impact"]["estimate"] is True and flow["estimate"] is True
    [later] = incidents.update(T0 + STEP, [stop()])  # 20 a minute more
    assert later.record["flow"]["shortfall"] == 80 and later.record["flow"]["duration_s"] == 240.0
    # a clock that skipped two slots counts both
    [skipped] = incidents.update(T0 + 3 * STEP, [stop()])
    assert skipped.record["flow"]["shortfall"] == 120


def test_an_update_is_published_when_the_estimate_moved_by_a_tenth() -> None:
    incidents = FlowIncidents(STEP, resolve_after=300.0)
    slow = stop(observed=0, expected=300.0, window=10)  # 30 a slot
    incidents.update(T0, [stop(observed=0, expected=300.0, window=3)])  # 300 behind
    shortfalls = [[e.record["flow"]["shortfall"] for e in incidents.update(T0 + n * STEP, [slow])] for n in (1, 2, 3)]
    # stable (a new state) at 330; 360 is not a tenth more than 330, 390 is
    assert shortfalls == [[330], [], [390]]


def test_the_estimate_is_the_shortfall_at_most_the_orders_in_flight_there() -> None:
    there = InFlight(orders=45, order_value=4500.0, vip_orders=9, penalty_orders=3, next_promise=None, region=None)
    assert affected(DROP, 60.4, None) == 60
    assert affected(DROP, 30.0, there) == 30
    assert affected(DROP, 60.0, there) == 45
    assert affected(SURGE, 500.0, there) == 0  # a surge holds nothing up


def test_in_flight_counts_each_open_order_at_the_hub_once() -> None:
    skus = [
        sku("o1", node="HZ-3", order_value=100.0, vip=True, promise_due=T0 + 95 * 60, region="330000"),
        sku("o1", "s2", node="HZ-3", order_value=100.0, vip=True, region="330000"),  # same order
        sku("o2", node="WH-1", next_node="HZ-3", order_value=50.0, penalty=True, region="330000"),  # on its way
        sku("o3", node="HZ-3", next_node="SH-1", order_value=70.0),  # left for Shanghai: not HZ-3's
        sku("o4", node="HZ-3", order_value=80.0, closed_at=T0 - 60),  # delivered
        sku("o5", node="HZ-3", order_value=20.0, promise_due=T0 - 60, region="320000"),  # promise broken
    ]
    there = in_flight(skus, HUB, T0, 4)
    assert there == InFlight(
        orders=3,
        order_value=170.0,
        vip_orders=1,
        penalty_orders=1,
        next_promise=T0 + 95 * 60,  # the broken one is a late order's incident, not this stop's
        region="330000",
        regions=2,
    )
    assert in_flight(skus, Signature("source", ("wms",)), T0, 4) is None  # the tracker knows no sources


def test_a_hub_incident_carries_its_in_flight_orders_as_the_engine_reads_them() -> None:
    there = InFlight(
        orders=90, order_value=9000.0, vip_orders=6, penalty_orders=3, next_promise=T0 + 95 * 60, region="330000"
    )
    calls: list[float] = []

    def of(sig: Signature, at: float) -> InFlight:
        calls.append(at)
        return there

    incidents = FlowIncidents(STEP, resolve_after=300.0)
    incidents.in_flight_of = of
    [opened] = incidents.update(T0, [stop()])
    record = opened.record
    assert record["counts"]["orders"] == 60
    assert record["impact"] == {
        "order_value": 6000.0,  # 60 of the 90 orders' 9,000
        "vip_orders": 4,
        "penalty_orders": 2,
        "min_minutes_to_promise": 95.0,
        "estimate": True,
    }
    assert record["flow"]["in_flight"] == 90 and record["labels"] == {"region": "330000"}
    assert incidents.update(T0 + STEP, [stop()])[0].record["counts"]["orders"] == 80
    assert len(calls) == 2  # counted once per published change, not per evaluation
    # restored from the changelog, it goes on from what it had
    restored = FlowIncidents(STEP, resolve_after=300.0)
    restored.restore(incidents.to_dict())
    assert restored.to_dict() == incidents.to_dict()


def test_a_hub_whose_parcels_go_to_many_provinces_names_none() -> None:
    incidents = FlowIncidents(STEP, resolve_after=300.0)
    incidents.in_flight_of = lambda sig, at: InFlight(10, 1000.0, 0, 0, None, "330000", regions=3)
    [opened] = incidents.update(T0, [stop()])
    assert opened.record["labels"] == {}


@pytest.mark.parametrize(
    ("lat", "lon", "region"), [(30.27, 120.16, "330000"), (23.13, 113.26, "440000")], ids=["hangzhou", "guangzhou"]
)
def test_an_area_incident_carries_the_province_it_is_in(lat: float, lon: float, region: str) -> None:
    cell = h3.latlng_to_cell(lat, lon, 4)
    incidents = FlowIncidents(STEP, resolve_after=300.0)
    [opened] = incidents.update(T0, [stop(sig=Signature(AREA, (cell,)))])
    assert opened.record["labels"] == {"region": region}


def test_a_surge_tells_its_excess_and_holds_no_orders() -> None:
    incidents = FlowIncidents(STEP, resolve_after=300.0)
    [opened] = incidents.update(T0, [Finding(SURGE, Signature("channel", ("douyin",)), 400, 60.0, 2, 1e-12)])
    flow = opened.record["flow"]
    assert (flow["excess"], flow["shortfall"], opened.record["counts"]["orders"]) == (340, 0, 0)


def test_in_flight_groups_orders_as_the_delay_incidents_do() -> None:
    """Its per-dimension values (read off the record for speed) agree with cluster_values."""
    cells = [h3.latlng_to_cell(30.27 + d, 120.16 + d, 7) for d in (0.0, 0.5, 3.0)]
    skus = [
        sku(
            f"o{i}",
            node=("HZ-3", "WH-1", None)[i % 3],
            next_node=("HZ-3", None, None, "SH-1", None)[i % 5],
            warehouse=("WH-1", None)[i % 2],
            carrier=("SF", "YTO", None)[i % 3],
            region=("330000", "310000", None)[i % 3],
            channel=("tmall", None)[i % 2],
            device_id=("PDA-1", None, None)[i % 3],
            cell=(*cells, None)[i % 4],
            closed_at=T0 if i % 7 == 0 else None,
        )
        for i in range(84)
    ]
    for dim in ("hub", "warehouse", "carrier", "carrier_region", "region", "channel", "device_id"):
        for value in {v for s in skus for v in cluster_values(s).get(dim, ())}:
            named = {s.order_id for s in skus if s.closed_at is None and value in cluster_values(s).get(dim, ())}
            there = in_flight(skus, Signature(dim, (value,)), T0, 4)
            assert there is not None and there.orders == len(named), (dim, value)
    parent = h3.cell_to_parent(cells[0], 4)
    in_area = {
        s.order_id
        for s in skus
        if s.closed_at is None and any(h3.cell_to_parent(c, 4) == parent for c in cluster_values(s).get(AREA, ()))
    }
    there = in_flight(skus, Signature(AREA, (parent,)), T0, 4)
    assert there is not None and there.orders == len(in_area) > 0
