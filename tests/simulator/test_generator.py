"""The normal flow: deterministic, valid against the contract, legal per SKU, realistic."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pytest

from orderradar.simulator.durations import CHINA_TZ
from orderradar.simulator.generator import TrafficGenerator, TrafficProfile, iter_events
from orderradar.simulator.geography import CITIES, distance_km
from orderradar.simulator.network import HUBS, NODE_BY_ID, WAREHOUSES
from stream.contract import OrderEvent, Status, validate_event, validate_record
from stream.core.progress import LADDER

START = datetime(2026, 11, 11, 0, 0, tzinfo=CHINA_TZ)
HOUR = timedelta(hours=1)
SMALL = TrafficProfile(orders_per_day=20_000)


def _digest(seed: int, hours: float = 6) -> str:
    h = hashlib.sha256()
    for emission in TrafficGenerator(seed, START, SMALL).run_until(START + hours * HOUR):
        h.update(emission.key + b"\x00" + emission.value + b"\n")
    return h.hexdigest()


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    assert _digest(5) == _digest(5)
    assert _digest(5) != _digest(6)


def test_output_does_not_depend_on_the_interpreter_hash_seed():
    script = textwrap.dedent(
        """
        import hashlib
        from datetime import datetime
        from orderradar.simulator.durations import CHINA_TZ
        from orderradar.simulator.generator import TrafficGenerator, TrafficProfile
        START = datetime(2026, 11, 11, 0, 0, tzinfo=CHINA_TZ)
        h = hashlib.sha256()
        for e in TrafficGenerator(5, START, TrafficProfile(orders_per_day=20_000)).run_until(
            START.replace(hour=6)
        ):
            h.update(e.key + b"\\x00" + e.value + b"\\n")
        print(h.hexdigest())
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _digest(5)


def test_taking_in_slices_gives_the_same_stream_as_one_run():
    whole = [e.value for e in TrafficGenerator(3, START, SMALL).run_until(START + 8 * HOUR)]
    gen = TrafficGenerator(3, START, SMALL)
    sliced = []
    for k in range(1, 33):
        sliced.extend(e.value for e in gen.take_until(START + k * 15 * timedelta(minutes=1)))
    assert sliced == whole


def test_every_event_passes_the_contract_and_the_key_is_the_order_id(baseline):
    assert len(baseline) > 5000
    for emission in baseline:
        result = validate_record(emission.key, emission.value, emission.at)
        assert isinstance(result, OrderEvent), (emission.value, result)
        assert result == emission.event
        assert validate_event(emission.value, emission.at) == emission.event


def test_emissions_come_in_event_time_order_without_scenarios(baseline):
    times = [e.event.event_time for e in baseline]
    assert times == sorted(times)
    assert all(e.at == e.event.event_time for e in baseline)


def test_per_sku_status_sequences_are_legal(baseline, check_legal):
    assert check_legal(e.event for e in baseline) == []


def test_event_ids_are_unique_and_made_of_order_sku_and_counter(baseline):
    ids = [e.event.event_id for e in baseline]
    assert len(ids) == len(set(ids))
    per_sku: dict[tuple[str, str], list[int]] = defaultdict(list)
    for e in baseline:
        prefix, _, n = e.event.event_id.rpartition("-")
        assert prefix == f"{e.event.order_id}-{e.event.sku}"
        per_sku[(e.event.order_id, e.event.sku)].append(int(n))
    for counters in per_sku.values():
        assert counters == list(range(1, len(counters) + 1))


def test_order_ids_are_unique_per_seed_and_name_channel_and_seed(baseline):
    paid = [e.event for e in baseline if e.event.status is Status.PAID]
    orders = {(e.order_id, e.channel) for e in paid}
    assert len({o for o, _ in orders}) == len(orders) == 600
    prefixes = {"tmall": "TM", "jd": "JD", "douyin": "DY", "miniprogram": "MP", "offline_store": "ST"}
    for order_id, channel in orders:
        prefix, seed, number = order_id.split("-")
        assert (prefix, seed, len(number)) == (prefixes[channel], "11", 8)


def test_flow_has_the_full_vocabulary_of_a_real_network(baseline):
    events = [e.event for e in baseline]
    statuses = Counter(e.status for e in events)
    # The ladder up to ``delivered``, hubs, and the detours beside it.
    ladder = LADDER[: LADDER.index(Status.DELIVERED) + 1]
    for status in (*ladder, Status.HUB_ARRIVAL, Status.DELIVERY_FAILED, Status.BACKORDERED, Status.CANCELLED):
        assert statuses[status] > 0, status
    assert statuses[Status.DELIVERED] > 0.9 * statuses[Status.PAID]
    assert statuses[Status.CANCELLED] < 0.05 * statuses[Status.PAID]
    assert {e.carrier for e in events} == {"SF", "ZTO", "YTO", "JD", "EMS", "CAINIAO", "STO", "YUNDA"}
    assert {e.channel for e in events} == {"tmall", "jd", "douyin", "miniprogram", "offline_store"}
    assert {e.sku_class.value for e in events} >= {"standard", "bulky", "cold_chain"}
    assert any(e.vip for e in events) and not all(e.vip for e in events)
    assert all(e.promised_by is not None and e.order_value is not None for e in events)
    skus_by_order: dict[str, set[str]] = defaultdict(set)
    for e in events:
        skus_by_order[e.order_id].add(e.sku)
    qty_lines = Counter(len(skus) for skus in skus_by_order.values())
    assert set(qty_lines) <= {1, 2, 3, 4, 5} and qty_lines[1] > qty_lines[5] > 0
    regions = Counter(e.region for e in events if e.status is Status.PAID)
    # Demand follows population x online shopping: Guangdong far above Tibet.
    assert regions["440000"] > 5 * regions.get("540000", 0)


def test_each_sku_passes_one_to_three_hubs_with_a_scanner_per_node(baseline):
    hubs_by_sku: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in baseline:
        ev = e.event
        if ev.status is Status.HUB_ARRIVAL and ev.attributes.get("reason") != "returned_to_station":
            hubs_by_sku[(ev.order_id, ev.sku)].append(ev.node or "")
            assert ev.device_id is not None and ev.device_id.startswith(f"{ev.node}-SCN-")
        if ev.status in (Status.PICKED, Status.PACKED, Status.OUTBOUND_SCAN):
            assert ev.device_id is not None and ev.device_id.startswith(ev.warehouse or "?")
    counts = Counter(len(set(h)) for h in hubs_by_sku.values())
    assert set(counts) <= {1, 2, 3} and counts[2] > 0 and counts[3] > 0


def test_hubs_and_warehouses_sit_in_their_real_cities():
    assert len(WAREHOUSES) >= 10 and len(HUBS) >= len(CITIES)
    for node in WAREHOUSES + HUBS:
        assert distance_km(node.lat, node.lon, node.city.lat, node.city.lon) < 40, node
    hz = next(c for c in CITIES if c.code == "HZ")
    assert (round(hz.lat, 1), round(hz.lon, 1)) == (30.3, 120.2)
    assert NODE_BY_ID["HZ-3"].city.name_en == "Hangzhou"


def test_truck_gps_fixes_lie_along_the_lane(baseline):
    fixes = [e.event for e in baseline if e.event.status is Status.LINEHAUL and e.event.node is None]
    assert len(fixes) > 500
    for ev in fixes:
        origin, dest = (NODE_BY_ID[n] for n in str(ev.attributes["leg"]).split(">"))
        assert ev.lat is not None and ev.lon is not None
        lane = distance_km(origin.lat, origin.lon, dest.lat, dest.lon)
        via = distance_km(origin.lat, origin.lon, ev.lat, ev.lon) + distance_km(ev.lat, ev.lon, dest.lat, dest.lon)
        assert via < lane + 15, (ev.event_id, lane, via)  # on the lane, give or take road wobble


def test_out_for_delivery_fixes_are_near_the_customer_and_deliveries_at_the_door(baseline):
    for e in baseline:
        ev = e.event
        if ev.status not in (Status.OUT_FOR_DELIVERY, Status.DELIVERED):
            continue
        assert ev.courier_id is not None
        assert ev.lat is not None and ev.lon is not None and ev.dest_lat is not None and ev.dest_lon is not None
        away_km = distance_km(ev.lat, ev.lon, ev.dest_lat, ev.dest_lon)
        assert away_km < (15 if ev.status is Status.OUT_FOR_DELIVERY else 0.2)


def test_stage_durations_are_realistic(baseline):
    first: dict[tuple[str, str], OrderEvent] = {}
    delivered_h = []
    late = 0
    for e in baseline:
        ev = e.event
        key = (ev.order_id, ev.sku)
        first.setdefault(key, ev)
        if ev.status is Status.DELIVERED:
            delivered_h.append((ev.event_time - first[key].event_time).total_seconds() / 3600)
            assert ev.promised_by is not None
            late += ev.event_time > ev.promised_by
    delivered_h.sort()
    median = delivered_h[len(delivered_h) // 2]
    assert 12 < median < 60  # Chinese e-commerce: typically delivered in one to two days
    assert delivered_h[0] > 2 and delivered_h[-1] < 24 * 10
    assert 0.005 < late / len(delivered_h) < 0.2  # most, not all, meet the promise


def test_iter_events_yields_the_generators_events():
    events = list(iter_events(2, START, START + 3 * HOUR, SMALL))
    assert events and all(isinstance(e, OrderEvent) for e in events)
    direct = TrafficGenerator(2, START, SMALL).run_until(START + 3 * HOUR)
    assert [e.to_json() for e in events] == [e.value for e in direct]


def test_warmup_starts_in_steady_state_with_parcels_already_on_the_road():
    profile = TrafficProfile(orders_per_day=1000, warmup_s=2 * 86400)
    gen = TrafficGenerator(4, START, profile)
    gen.skip_until(START)
    first_hour = gen.take_until(START + HOUR)
    assert all(e.at >= START for e in first_hour)
    statuses = {e.event.status for e in first_hour}
    assert Status.LINEHAUL in statuses and Status.HUB_ARRIVAL in statuses
    cold = TrafficGenerator(4, START, TrafficProfile(orders_per_day=1000)).take_until(START + HOUR)
    assert {e.event.status for e in cold} <= {Status.PAID, Status.BACKORDERED, Status.CANCELLED}


def test_bad_profiles_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="orders_per_day"):
        TrafficProfile(orders_per_day=0)
    with pytest.raises(ValueError, match="gps_interval_s"):
        TrafficProfile(gps_interval_s=1)
    with pytest.raises(ValueError, match="seed"):
        TrafficGenerator(-1, START)
