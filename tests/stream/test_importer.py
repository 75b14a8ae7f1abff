"""Import mappings (pure): loading, mapping rows, reporting every problem of a row."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.rules import RuleFileError
from stream.contract import OrderEvent, Status
from stream.core.importer import RowRejection, Skipped, load_mapping, map_row

NOW = datetime(2026, 11, 11, tzinfo=UTC)
MAPPINGS = Path(__file__).resolve().parents[2] / "config" / "import_mappings"
OLIST = MAPPINGS / "olist.yaml"
LADE = MAPPINGS / "lade.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path


MAPPING = """
timezone: Asia/Shanghai
fields:
  event_id: {template: "wms-{doc}-{line}"}
  order_id: doc
  sku: item.code
  status: {column: state, map: {PK: picked, SHP: outbound_scan, DRAFT: skip}}
  event_time: {column: at, format: "%d/%m/%Y %H:%M"}
  source: {constant: wms}
  qty: {column: n, default: 1}
  lat: lat
  lon: lon
attributes:
  dock: dock
"""


#: A row of the ``MAPPING`` export: a packed line of a sales order.
WMS_ROW = {
    "doc": "SO-1",
    "line": 2,
    "item": {"code": "SKU-9"},
    "state": "PK",
    "at": "11/11/2026 10:30",
    "n": "",
    "lat": "31.23",
    "lon": "121.47",
    "dock": "D4",
}


def test_olist_mapping_maps_a_customer_row_with_its_state_and_the_sla_channel() -> None:
    mapping = load_mapping(OLIST)
    row = {
        "source": "olist",
        "order_id": "7033745709b7cf1bac7d2533663592de",
        "package_id": "7033745709b7cf1bac7d2533663592de",
        "event_seq": "2",
        "event_type": "payment_approved",
        "event_time": "2016-10-04T14:46:48",
        "lat": "-22.869088",
        "lon": "-43.506232",
        "city": "rio de janeiro",
        "region": "RJ",
        "promised_time": "2016-11-30T00:00:00",
        "zip_prefix": "21853",
        "location_basis": "customer_zip_prefix_point",
        "seller_id": "",
    }
    event = map_row(row, 3, mapping, NOW)
    assert isinstance(event, OrderEvent)
    assert event.event_id == "olist-7033745709b7cf1bac7d2533663592de-2" and event.status is Status.PAID
    assert event.event_time.isoformat() == "2016-10-04T14:46:48-03:00"  # Sao Paulo, no DST then
    assert (event.channel, event.region) == ("olist", "RJ")
    assert event.attributes == {
        "city": "rio de janeiro",
        "zip_prefix": "21853",
        "location_basis": "customer_zip_prefix_point",
    }
    skipped = map_row(row | {"event_type": "order_purchased"}, 2, mapping, NOW)
    assert isinstance(skipped, Skipped)


def test_olist_hand_over_rows_located_at_the_seller_carry_no_region() -> None:
    row = {
        "source": "olist",
        "order_id": "a1",
        "package_id": "a1",
        "event_seq": "3",
        "event_type": "handed_to_carrier",
        "event_time": "2017-10-04T14:46:48",
        "lat": "-23.5",
        "lon": "-46.6",
        "city": "sao paulo",
        "region": "SP",
        "promised_time": "2017-11-30T00:00:00",
        "zip_prefix": "01001",
        "location_basis": "seller_zip_prefix_point",
        "seller_id": "s1|s2",
    }
    event = map_row(row, 4, load_mapping(OLIST), NOW)
    assert isinstance(event, OrderEvent)
    assert event.status is Status.OUTBOUND_SCAN and event.region is None
    assert event.attributes["seller_id"] == "s1|s2"


def test_lade_mapping_gives_gcj02_fix_and_stop_station_and_courier() -> None:
    row = {
        "source": "lade_d",
        "package_id": "929908",
        "event_seq": "2",
        "event_type": "delivered",
        "event_time": "2000-05-12T13:15:00",
        "lat": "43.90414",
        "lon": "126.55037",
        "dest_lat": "43.90465",
        "dest_lon": "126.55021",
        "province": "Jilin",
        "city": "Jilin",
        "courier_id": "1656",
        "delivery_region_id": "165",
        "aoi_id": "60052",
        "aoi_type": "1",
    }
    event = map_row(row, 3, load_mapping(LADE), NOW)
    assert isinstance(event, OrderEvent)
    assert event.event_time.isoformat() == "2000-05-12T13:15:00+08:00"
    assert (event.crs.value, event.dest_lat, event.dest_lon) == ("gcj02", 43.90465, 126.55021)
    assert (event.courier_id, event.node, event.status) == ("1656", "station-165", Status.DELIVERED)


def test_when_leaves_the_field_empty_or_default_on_other_rows(tmp_path: Path) -> None:
    mapping = load_mapping(
        write(
            tmp_path,
            MAPPING.replace(
                "  lat: lat\n",
                "  lat: lat\n  region: {column: st, when: {column: kind, equals: [c, d]}, default: XX}\n",
            ),
        )
    )
    row = WMS_ROW | {"st": "SP"}
    regions = [map_row(row | {"kind": kind}, 1, mapping, NOW) for kind in ("c", "d", "s")]
    assert [e.region for e in regions if isinstance(e, OrderEvent)] == ["SP", "SP", "XX"]
    no_kind = map_row(row, 1, mapping, NOW)
    assert isinstance(no_kind, OrderEvent) and no_kind.region == "XX"


def test_columns_templates_nested_json_formats_zones_defaults(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, MAPPING))
    row = WMS_ROW
    event = map_row(row, 1, mapping, NOW)
    assert isinstance(event, OrderEvent)
    assert (event.event_id, event.order_id, event.sku, event.qty) == ("wms-SO-1-2", "SO-1", "SKU-9", 1)
    assert event.event_time.isoformat() == "2026-11-11T10:30:00+08:00"
    assert (event.lat, event.lon, event.attributes) == (31.23, 121.47, {"dock": "D4"})
    assert isinstance(map_row(row | {"state": "DRAFT"}, 1, mapping, NOW), Skipped)


def test_a_bad_row_gets_every_problem_with_its_row_number(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, MAPPING))
    row = WMS_ROW | {"item": {}, "state": "LOST", "at": "2026-11-11", "n": "2", "lat": "31.2", "lon": ""}
    result = map_row(row, 17, mapping, NOW)
    assert isinstance(result, RowRejection) and result.row == 17
    problems = {p.field: p.problem for p in result.problems}
    assert problems["sku"] == "column 'item.code' is not in the row"
    assert problems["status"] == "unknown value 'LOST' (not in the mapping)"
    assert "is not a time in format '%d/%m/%Y %H:%M'" in problems["event_time"]
    # contract problems come through too (here: lat without lon)
    fixed = row | {"item": {"code": "X"}, "state": "PK", "at": "11/11/2026 10:30"}
    result = map_row(fixed, 18, mapping, NOW)
    assert isinstance(result, RowRejection) and "lat and lon must be given together" in result.summary()


@pytest.mark.parametrize(
    "text, problem",
    [
        ("fields: {order_id: a}", "must be mapped"),
        (
            "fields: {event_id: a, order_id: a, sku: a, status: a, event_time: a, source: a, colour: a}",
            "colour not in the event contract",
        ),
        (
            "fields: {event_id: a, order_id: a, sku: a, status: {column: s, map: {X: shipped}}, event_time: a, "
            "source: a}",
            "shipped are not statuses",
        ),
        (
            "fields: {event_id: {column: a, constant: b}, order_id: a, sku: a, status: a, event_time: a, source: a}",
            "exactly one of column, constant, template",
        ),
        (
            "timezone: Mars/Olympus\nfields: {event_id: a, order_id: a, sku: a, status: a, event_time: a, source: a}",
            "unknown time zone",
        ),
    ],
)
def test_bad_mapping_files_name_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(RuleFileError) as info:
        load_mapping(write(tmp_path, text))
    assert problem in str(info.value) and "m.yaml" in str(info.value)
