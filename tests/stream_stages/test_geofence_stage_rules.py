"""The geofence stage's rules, in-process: when a fence entry may advance a SKU, the id that
makes the advance happen once, one advance per fix under overlapping fences, and the bound
on tracked entities (with their state deleted)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from geo.fence_tracker import Membership, Visit
from stream.contract import OrderEvent, Status
from stream.core.lifecycle import apply_event
from stream.core.order_state import new_order
from stream.stage_api import Accepted, BatchContext, SourceRecord, StageValue
from stream.stages.geo_stage import GeoStage, locate
from stream.stages.geofence_stage import GeofenceStage, advance_event_id, moves_forward

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 11, 8, tzinfo=UTC)


def sku_after(*statuses: Status):  # type: ignore[no-untyped-def]
    order = new_order("O1", 0)
    for n, status in enumerate(statuses):
        event = OrderEvent(
            event_id=f"e{n}", order_id="O1", sku="S1", status=status, event_time=T0 + timedelta(minutes=n), source="tms"
        )
        order, _ = apply_event(order, event)
    return order.skus["S1"]


@pytest.mark.parametrize(
    ("statuses", "advances"),
    [
        ((Status.PACKED, Status.OUTBOUND_SCAN), True),
        ((Status.OUTBOUND_SCAN, Status.LINEHAUL), True),
        ((Status.LINEHAUL, Status.HUB_ARRIVAL), False),  # already there
        ((Status.HUB_ARRIVAL, Status.OUT_FOR_DELIVERY), False),  # a courier passing its station
        ((Status.OUT_FOR_DELIVERY, Status.DELIVERED), False),
        ((Status.PAID, Status.CANCELLED), False),
    ],
)
def test_a_hub_entry_advances_only_a_sku_it_moves_forward(statuses: tuple[Status, ...], advances: bool) -> None:
    assert moves_forward(sku_after(*statuses), Status.HUB_ARRIVAL) is advances


def test_the_advance_id_is_one_per_sku_and_fence_and_a_valid_event_id() -> None:
    assert advance_event_id("HUB-1", "S1") == advance_event_id("HUB-1", "S1") == "geofence:HUB-1:S1"
    assert advance_event_id("HUB-1", "S1") != advance_event_id("HUB-2", "S1")
    odd = advance_event_id("站 7 #north" + "x" * 200, "S1")
    assert len(odd) <= 128 and odd != advance_event_id("站 8 #north" + "x" * 200, "S1")
    OrderEvent(event_id=odd, order_id="O1", sku="S1", status=Status.HUB_ARRIVAL, event_time=T0, source="geofence")


def test_tracked_entities_are_bounded_and_the_forgotten_ones_deleted() -> None:
    stage = GeofenceStage(GeoStage(), REPO / "config" / "geofences.yaml", max_entities=10)
    for n in range(12):
        at = T0 + timedelta(minutes=n)
        stage.members[f"courier/0/C{n}"] = (Membership({"JL-31": Visit(at, at)}, at), 0)
    ctx = BatchContext(T0, (), {}, {})
    dirty: set[str] = set()
    stage._bound(dirty)
    stage._persist(ctx, dirty)
    # Down to 90 % of the bound, the longest-quiet first.
    assert sorted(stage.members) == sorted(f"courier/0/C{n}" for n in range(3, 12))
    assert {key: change for key, change in ctx.stage_changes.items()} == {
        f"#geofence#courier/0/C{n}": (f"courier/0/C{n}", 0) for n in range(3)
    }
    assert not any(isinstance(change, StageValue) for change in ctx.stage_changes.values())


def test_overlapping_hub_fences_advance_a_sku_once_per_fix(tmp_path: Path) -> None:
    ring = [[120.19, 30.29], [120.21, 30.29], [120.21, 30.31], [120.19, 30.31], [120.19, 30.29]]
    features = [
        {"type": "Feature", "properties": {"hub_id": hub}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        for hub in ("HUB-A", "HUB-B")
    ]
    (tmp_path / "hubs.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    (tmp_path / "geofences.yaml").write_text(
        "layers:\n  - {name: hubs, path: hubs.geojson, kind: hub, id_field: hub_id, advance_stage_to: hub_arrival}\n"
    )
    geo = GeoStage()
    stage = GeofenceStage(geo, tmp_path / "geofences.yaml")
    order = new_order("O1", 0)
    ctx = BatchContext(T0, (), {}, {})
    for n, (status, pos) in enumerate([(Status.OUTBOUND_SCAN, (30.0, 120.0)), (Status.LINEHAUL, (30.30, 120.20))]):
        event = OrderEvent(
            event_id=f"e{n}",
            order_id="O1",
            sku="S1",
            status=status,
            lat=pos[0],
            lon=pos[1],
            event_time=T0 + timedelta(minutes=n),
            source="tms",
        )
        order, change = apply_event(order, event)
        assert change is not None
        ctx.orders["O1"] = order
        ctx.accepted.append(Accepted(SourceRecord("order-events", 0, n, None, b"O1", event.to_json()), event, change))
    geo.batch = {
        a.event.event_id: fix
        for a, fix in zip(ctx.accepted, locate([a.event for a in ctx.accepted]), strict=True)
        if fix is not None
    }
    asyncio.run(stage.process(ctx))
    timeline = ctx.orders["O1"].skus["S1"].timeline
    assert [(e.event_id, e.status) for e in timeline if e.source == "geofence"] == [
        ("geofence:HUB-A:S1", Status.HUB_ARRIVAL)
    ]
    assert sum(1 for line in ctx.lines if line.startswith("sku_events,") and "source=geofence" in line) == 1
