"""Each scenario changes the flow as specified, and only as specified.

Orders are drawn from per-order random streams, so a run with a scenario has the same
orders as the baseline; differences are the scenario's doing.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
import shapely

from orderradar.simulator.durations import CHINA_TZ
from orderradar.simulator.emission import Emission
from orderradar.simulator.generator import TrafficGenerator, TrafficProfile
from orderradar.simulator.geography import CITY_BY_CODE, distance_km
from orderradar.simulator.network import NODE_BY_ID
from orderradar.simulator.scenarios import (
    CarrierSlowdown,
    FlashSale,
    HubOutage,
    ScenarioError,
    Typhoon,
    parse_scenario,
)
from stream.contract import OrderEvent, RejectCode, Rejection, Status, validate_event

START = datetime(2026, 11, 11, 0, 0, tzinfo=CHINA_TZ)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
PROFILE = TrafficProfile(orders_per_day=1500, diurnal=False)
WINDOW = 14 * HOUR
SEED = 21


def _run(*scenarios, until=START + WINDOW) -> list[Emission]:
    return TrafficGenerator(SEED, START, PROFILE, scenarios).take_until(until)


@pytest.fixture(scope="module")
def base() -> list[Emission]:
    return _run()


# --------------------------------------------------------------------------- parsing


def test_specs_parse_into_validated_scenarios():
    assert parse_scenario("hub_outage:hub=HZ-3") == HubOutage(hub="HZ-3")
    assert parse_scenario("flash_sale") == FlashSale()
    assert FlashSale().factor == 47 and FlashSale().minutes == 30
    slow = parse_scenario("carrier_slowdown:province=Guangdong,carrier=zto,factor=2.5")
    assert slow == CarrierSlowdown(province="440000", carrier="ZTO", factor=2.5)
    storm = parse_scenario("typhoon:lat=30.2,lon=120.1,radius_km=50")
    assert isinstance(storm, Typhoon) and storm.polygon.area > 0
    for spec in ("hub_outage:hub=SH-2,minutes=15", "flash_sale:factor=10,channel=jd", "source_lag:source=zto-tms"):
        scenario = parse_scenario(spec)
        assert parse_scenario(scenario.spec()) == scenario


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("meteor", "unknown scenario 'meteor'"),
        ("hub_outage:hub=XX-9", "hub: unknown hub"),
        ("hub_outage:colour=red", "colour: unknown parameter"),
        ("flash_sale:factor=0.5", "factor: Input should be greater than 1"),
        ("flash_sale:channel=ebay", "channel: unknown channel"),
        ("carrier_slowdown:province=Atlantis", "unknown province 'Atlantis'"),
        ("typhoon:lat=30", "lat and lon must be given together"),
        ("source_lag:lag_minutes", "expected param=value"),
    ],
)
def test_bad_specs_name_the_scenario_parameter_and_problem(spec, message):
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(")):
        parse_scenario(spec)


def test_deactivation_matches_parameters_after_validation():
    slow = parse_scenario("carrier_slowdown:province=440000,carrier=SF")
    assert slow.matches({"province": "Guangdong"}) and slow.matches({"carrier": "sf"})
    assert not slow.matches({"province": "Zhejiang"})
    assert not slow.matches({"province": "Atlantis"})


# --------------------------------------------------------------------------- flash sale


def _orders_placed(scenarios, minutes: float, profile: TrafficProfile = PROFILE) -> int:
    gen = TrafficGenerator(SEED, START, profile, scenarios)
    gen.skip_until(START + minutes * MINUTE)
    return gen.orders_placed


def test_flash_sale_multiplies_the_order_rate_for_its_minutes():
    expected_base = PROFILE.orders_per_day / 1440 * 10
    sale = _orders_placed([FlashSale(factor=47, minutes=10)], 10)
    assert 0.85 * 47 * expected_base < sale < 1.15 * 47 * expected_base
    assert 0.3 * expected_base < _orders_placed([], 10) < 2.5 * expected_base
    # After the sale the rate falls back: the next hour adds about an hour's worth.
    after = _orders_placed([FlashSale(factor=47, minutes=10)], 70) - sale
    assert after < 2 * PROFILE.orders_per_day / 24


def test_flash_sale_on_one_channel_brings_that_channels_orders():
    emissions = TrafficGenerator(SEED, START, PROFILE, [FlashSale(factor=47, minutes=10, channel="douyin")]).take_until(
        START + 10 * MINUTE
    )
    paid = {e.event.order_id: e.event for e in emissions if e.event.status is Status.PAID}
    channels = Counter(ev.channel for ev in paid.values())
    assert channels["douyin"] > 0.95 * len(paid)
    assert sum(ev.attributes.get("promo") == "flash_sale" for ev in paid.values()) > 0.9 * len(paid)


# --------------------------------------------------------------------------- hub outage


def test_hub_outage_silences_the_hub_then_drains_its_backlog(base):
    hub, end = "HZ-3", START + 12 * HOUR
    assert any(e.event.node == hub and e.at < end for e in base)
    gen = TrafficGenerator(SEED, START, PROFILE, [HubOutage(hub=hub, minutes=12 * 60, drain_minutes=30)])
    during = gen.take_until(end - MINUTE)
    assert gen.held > 0
    during += gen.take_until(end)
    assert not [e for e in during if e.event.node == hub]
    after = gen.take_until(START + WINDOW)
    assert gen.held == 0
    backlog = [e for e in after if e.event.node == hub and e.at <= end + 30 * MINUTE]
    assert backlog and all(
        e.event.status in (Status.HUB_ARRIVAL, Status.LINEHAUL, Status.OUT_FOR_DELIVERY, Status.EXCEPTION)
        for e in backlog
    )


def test_run_time_switching_equals_a_timed_scenario():
    timed = [e.value for e in _run(HubOutage(hub="HZ-3", minutes=12 * 60))]
    gen = TrafficGenerator(SEED, START, PROFILE)
    by_hand = [e.value for e in gen.take_until(START + HOUR)]
    gen.activate(HubOutage(hub="HZ-3"), START + HOUR)  # as the control does: at the frontier
    by_hand += [e.value for e in gen.take_until(START + 12 * HOUR)]
    ended = gen.deactivate("hub_outage", START + 12 * HOUR, {"hub": "HZ-3"})
    assert [s.spec() for s in ended] == ["hub_outage:hub=HZ-3"]
    by_hand += [e.value for e in gen.take_until(START + WINDOW)]
    # Started an hour later, but nothing reached HZ-3 in the first hour: the same bytes.
    assert by_hand == timed


def test_scheduled_activation_and_the_past_are_handled():
    gen = TrafficGenerator(SEED, START, PROFILE)
    gen.activate(FlashSale(minutes=5), START + 2 * HOUR)  # in the future: a timer
    gen.take_until(START + 2 * HOUR + MINUTE)
    assert [a.scenario.name for a in gen.active()] == ["flash_sale"]
    with pytest.raises(ValueError, match="before the simulated frontier"):
        gen.activate(FlashSale(), START)


def test_activation_at_the_reported_frontier_counts_as_now():
    gen = TrafficGenerator(SEED, START, PROFILE)
    gen.take_until(START + timedelta(seconds=1.0004))
    gen.activate(FlashSale(), gen.frontier)  # the frontier is shown to the millisecond
    assert [a.scenario.name for a in gen.active()] == ["flash_sale"]


# --------------------------------------------------------------------------- slowdown


def test_carrier_slowdown_stretches_stages_only_in_its_province(base):
    slow = _run(CarrierSlowdown(province="Guangdong", factor=5))

    def is_gd(e: OrderEvent) -> bool:
        return e.region == "440000" or NODE_BY_ID[e.warehouse or ""].province == "440000"

    def pick_wait(emissions: list[Emission]) -> list[float]:
        paid: dict[tuple[str, str], datetime] = {}
        waits = []
        for em in emissions:
            ev = em.event
            if ev.status is Status.PAID:
                paid[(ev.order_id, ev.sku)] = ev.event_time
            elif ev.status is Status.PICKED and NODE_BY_ID[ev.warehouse or ""].province == "440000":
                waits.append((ev.event_time - paid[(ev.order_id, ev.sku)]).total_seconds())
        return sorted(waits)

    fast, slowed = pick_wait(base), pick_wait(slow)
    assert len(fast) > 50 and len(slowed) > 20
    # Warehouse shifts and cut-offs blur the factor; the median still grows a lot.
    assert slowed[len(slowed) // 2] > 2 * fast[len(fast) // 2]
    # Orders with nothing in Guangdong are untouched, byte for byte.
    assert [e.value for e in base if not is_gd(e.event)] == [e.value for e in slow if not is_gd(e.event)]


# --------------------------------------------------------------------------- typhoon


def test_typhoon_polygon_covers_the_pearl_river_delta():
    poly = Typhoon().polygon
    for code in ("GZ", "SZ", "DG", "FS"):
        assert shapely.contains_xy(poly, CITY_BY_CODE[code].lon, CITY_BY_CODE[code].lat), code
    for code in ("HZ", "BJ", "NN"):
        assert not shapely.contains_xy(poly, CITY_BY_CODE[code].lon, CITY_BY_CODE[code].lat), code
    feature = Typhoon(minutes=60).geojson({"id": "t1"})
    assert feature["geometry"]["type"] == "Polygon" and feature["properties"]["kind"] == "typhoon"
    circle = Typhoon(lat=30.27, lon=120.16, radius_km=50).polygon
    assert shapely.contains_xy(circle, 120.16, 30.27) and not shapely.contains_xy(circle, 121.47, 31.23)


def test_typhoon_stops_all_movement_inside_its_polygon_until_it_passes(base):
    poly = Typhoon().polygon

    def inside(e: Emission) -> bool:
        return e.event.lat is not None and bool(shapely.contains_xy(poly, e.event.lon, e.event.lat))

    assert sum(inside(e) for e in base) > 50
    gen = TrafficGenerator(SEED, START, PROFILE, [Typhoon()])
    during = gen.take_until(START + WINDOW)
    assert not [e for e in during if inside(e)]
    assert any(e.event.region == "440000" and e.event.status is Status.PAID for e in during)  # people still order
    assert [f["properties"]["kind"] for f in gen.disruptions()["features"]] == ["typhoon"]
    gen.deactivate("typhoon", START + WINDOW)
    assert gen.disruptions()["features"] == []
    after = gen.take_until(START + WINDOW + 2 * HOUR)
    assert any(inside(e) for e in after)


# --------------------------------------------------------------------------- broken scanner


def test_broken_scanner_sends_bad_times_and_gps_jumps_from_one_device(base):
    device = Counter(e.event.device_id for e in base if e.event.status is Status.HUB_ARRIVAL).most_common(1)[0][0]
    broken = _run(parse_scenario(f"broken_scanner:device={device},gps_jump_share=0.5"))
    mine = [e for e in broken if e.event.device_id == device]
    others = [e for e in broken if e.event.device_id != device]
    assert len(mine) >= 20
    assert all(e.event.event_time == e.at for e in others)
    assert [e.value for e in others] == [e.value for e in base if e.event.device_id != device]
    skews = [(e.event.event_time - e.at).total_seconds() for e in mine]
    assert all(s != 0 for s in skews)
    future = [s for s in skews if s > 0]
    assert 0.4 < len(future) / len(skews) < 0.95 and len(future) < len(skews)
    rejected = [validate_event(e.value, e.at) for e in mine]
    assert any(isinstance(r, Rejection) and r.code is RejectCode.FUTURE_TIME for r in rejected)
    node = NODE_BY_ID[device.rsplit("-SCN-", 1)[0]]
    jumps = [e for e in mine if distance_km(e.event.lat or 0, e.event.lon or 0, node.lat, node.lon) > 50]
    assert 0 < len(jumps) < len(mine)


# --------------------------------------------------------------------------- channel feed problems


def test_channel_dupes_resend_and_shuffle_one_channels_events_within_a_minute(base):
    dupes = _run(parse_scenario("channel_dupes:channel=douyin,rate=0.05,window_s=60"))
    douyin = [e for e in dupes if e.event.channel == "douyin"]
    assert [e.value for e in dupes if e.event.channel != "douyin"] == [
        e.value for e in base if e.event.channel != "douyin"
    ]
    delays = [(e.at - e.event.event_time).total_seconds() for e in douyin]
    assert all(0 <= d <= 60 for d in delays)
    copies = [e for e in douyin if e.duplicate]
    originals = {e.event.event_id: e.value for e in douyin if not e.duplicate}
    assert 0.03 < len(copies) / len(originals) < 0.07
    assert all(originals[c.event.event_id] == c.value for c in copies)
    times = [e.event.event_time for e in douyin if not e.duplicate]
    assert times != sorted(times)  # shuffled
    assert [e.at for e in dupes] == sorted(e.at for e in dupes)  # the wire is still in wire order


def test_source_lag_delays_one_source_by_minutes(base):
    lagged = _run(parse_scenario("source_lag:source=wms,lag_minutes=15"))
    wms = [e for e in lagged if e.event.source == "wms"]
    assert len(wms) > 100
    assert all(13.5 * 60 <= (e.at - e.event.event_time).total_seconds() <= 16.5 * 60 for e in wms)
    assert all(e.at == e.event.event_time for e in lagged if e.event.source != "wms")
    ids = {e.event.event_id for e in lagged if e.event.source == "wms"}
    assert ids <= {e.event.event_id for e in base if e.event.source == "wms"}


def test_carrier_slowdown_also_stretches_stages_under_way():
    start = START + 14 * HOUR  # mid-afternoon: warehouses, trucks and couriers all at work
    profile = TrafficProfile(orders_per_day=6000, diurnal=False, warmup_s=36 * 3600)

    def guangdong_scans(*scenarios) -> int:
        gen = TrafficGenerator(SEED, start, profile)
        gen.skip_until(start)
        for scenario in scenarios:
            gen.activate(scenario, start)
        return sum(
            NODE_BY_ID[e.event.node].province == "440000"
            for e in gen.take_until(start + 30 * MINUTE)
            if e.event.node in NODE_BY_ID
        )

    base = guangdong_scans()
    slowed = guangdong_scans(CarrierSlowdown(province="Guangdong", factor=3))
    # parcels already at work in the province scan a third as often from the switch on
    assert base > 60 and slowed < 0.6 * base, (base, slowed)
