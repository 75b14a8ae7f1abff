"""Reading the live stores (what the browser got from /ws/warroom) into frames and records."""

from __future__ import annotations

from collections.abc import Mapping

import h3
import pytest

from dashboard.warroom import live

HZ5 = h3.latlng_to_cell(30.27, 120.16, 5)
HZ7 = h3.latlng_to_cell(30.27, 120.16, 7)
BJ5 = h3.latlng_to_cell(39.9, 116.4, 5)


def store(items: Mapping[str, object]) -> dict[str, object]:
    return {"seq": 9, "items": items}


def cell(c: str, skus: int, at_risk: int = 0, late: int = 0, stalled: int = 0, **extra: object) -> dict[str, object]:
    return {"cell": c, "skus": skus, "at_risk": at_risk, "late": late, "stalled": stalled, **extra}


def test_cells_roll_up_to_the_requested_resolution() -> None:
    frame = live.cells_frame(store({HZ5: cell(HZ5, 10, late=1), BJ5: cell(BJ5, 30, stalled=3, at_risk=3)}), res=3)
    assert set(frame["cell"]) == {h3.cell_to_parent(HZ5, 3), h3.cell_to_parent(BJ5, 3)}
    by_cell = frame.set_index("cell")
    assert by_cell.loc[h3.cell_to_parent(BJ5, 3), "delay_rate"] == pytest.approx(0.2)


def test_only_one_resolution_is_counted_when_several_are_sent() -> None:
    # The same 10 SKUs reported at resolution 5 and 7 must not count twice.
    items = {HZ5: cell(HZ5, 10, late=2), HZ7: cell(HZ7, 10, late=2)}
    national = live.cells_frame(store(items), res=3)
    assert national["skus"].tolist() == [10]
    finest = live.cells_frame(store(items), res=None)
    assert finest["cell"].tolist() == [HZ7]


def test_bad_cells_and_values_are_ignored() -> None:
    frame = live.cells_frame(store({"nope": cell("nope", 5), HZ5: {"cell": HZ5, "skus": "many", "late": True}}))
    assert frame["cell"].tolist() == [HZ5] and frame["skus"].tolist() == [0]
    assert frame["delay_rate"].tolist() == [0.0]
    assert live.cells_frame(None).empty and list(live.cells_frame(None).columns) == live.CELL_COLUMNS


def test_regions_prefer_the_cells_own_region() -> None:
    cells = live.cells_frame(store({HZ5: cell(HZ5, 10, late=5, region="330000"), BJ5: cell(BJ5, 10, stalled=1)}))
    regions = live.regions_frame(cells, {BJ5: "110000", HZ5: "999999"}).set_index("code")
    assert regions.loc["330000", "delay_rate"] == pytest.approx(0.5)
    assert regions.loc["110000", "skus"] == 10 and "999999" not in regions.index


def test_incidents_take_tier_and_owner_from_their_alerts() -> None:
    incidents = store(
        {
            "i1": {
                "incident_id": "i1",
                "kind": "hub_stall",
                "state": "growing",
                "title": "hub=HZ-1: 40 stalled",
                "root_cause": {"hub": "HZ-1", "lat": 30.2, "lon": 120.1},
                "root_cause_text": "hub=HZ-1",
                "counts": {"orders": 40, "skus": 55},
                "trend": {"direction": "up", "series": [1, 5, 40]},
                "sample_orders": ["o1"],
                "opened_at": "2026-11-11T10:00:00Z",
            },
            "i2": {"incident_id": "i2", "state": "open", "root_cause": {"h3_cells": [HZ5]}, "counts": {"orders": 900}},
        }
    )
    alerts = store(
        {
            "a1": {"alert_id": "a1", "tier": "P3", "incident_ids": ["i1"], "status": "firing"},
            "a2": {"alert_id": "a2", "tier": "P1", "incident_ids": ["i1"], "status": "acked", "acked_by": "bob"},
        }
    )
    found = live.incidents(incidents, alerts)
    assert [i.incident_id for i in found] == ["i1", "i2"]  # P1 before P4, however many orders
    first = found[0]
    assert (first.tier, first.owner, first.affected_orders, first.trend) == ("P1", "bob", 40, (1, 5, 40))
    assert (first.lat, first.lon) == (30.2, 120.1)
    lat, lon = h3.cell_to_latlng(HZ5)
    assert (found[1].tier, found[1].lat, found[1].lon) == ("P4", lat, lon)


def test_alerts_open_first_worst_tier_first() -> None:
    alerts = store(
        {
            "a": {"alert_id": "a", "status": "resolved", "tier": "P1", "updated_at": "2026-11-11T10:05:00Z"},
            "b": {"alert_id": "b", "status": "firing", "tier": "P3", "first_at": "2026-11-11T10:00:00Z"},
            "c": {
                "alert_id": "c",
                "status": "acked",
                "tier": "P2",
                "first_at": "2026-11-11T10:01:00Z",
                "acked_by": "amy",
                "labels": {"kind": "hub_stall", "hub": "HZ-1"},
            },
        }
    )
    found = live.alerts(alerts)
    assert [a.alert_id for a in found] == ["c", "b", "a"]
    assert not found[0].can_ack and found[0].can_resolve and found[1].can_ack
    assert not found[2].open and not found[2].can_resolve
    assert found[0].title == "hub=HZ-1, kind=hub_stall"


def test_zones_read_the_gateway_listing_with_cells_and_polygons() -> None:
    polygon = {"type": "Polygon", "coordinates": [[[120, 30], [121, 30], [121, 31], [120, 30]]]}
    zones = live.zones(
        store(
            {
                "dz-1": {
                    "disruption_id": "dz-1",
                    "name": "Haikui",
                    "geometry": polygon,
                    "h3_cells": [HZ5, "junk"],
                    "reason": "typhoon",
                    "ends_at": "2026-11-12T00:00:00Z",
                    "starts_at": "2026-11-11T00:00:00Z",
                    "created_by": "alice",
                }
            }
        )
    )
    assert len(zones) == 1
    zone = zones[0]
    assert (zone.zone_id, zone.name, zone.reason, zone.created_by) == ("dz-1", "Haikui", "typhoon", "alice")
    assert len(zone.rings) == 2 and zone.rings[0][0] == (120.0, 30.0)
    assert zone.rings[1][0] == zone.rings[1][-1] and zone.affected_orders is None
