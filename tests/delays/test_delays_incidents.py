"""Root-cause selection, spatial merging and the incident lifecycle, on synthetic input."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import h3

from stream.core.incident_detector import IncidentDetector
from stream.core.incident_model import PART_SEP, ClusterItem, IncidentSettings
from stream.sinks.line_protocol import incident_line

MIN = 60.0
CARRIERS = ("SF", "ZTO", "YTO")
REGIONS = ("Zhejiang", "Jiangsu", "Shanghai", "Anhui", "Fujian")
SETTINGS = IncidentSettings(
    dimensions=["carrier_region", "carrier", "area", "region"],
    min_count=8,
    window=timedelta(hours=2),
    eval_every=timedelta(minutes=5),
    resolve_after=timedelta(minutes=30),
    h3_resolution=7,
)
CENTRE = h3.latlng_to_cell(30.27, 120.15, 7)


def _values(carrier: str, region: str, cell: str | None = None) -> dict[str, tuple[str, ...]]:
    values: dict[str, tuple[str, ...]] = {
        "carrier": (carrier,),
        "region": (region,),
        "carrier_region": (carrier + PART_SEP + region,),
    }
    if cell:
        values["area"] = (cell,)
    return values


def _flow(det: IncidentDetector, start: float, end: float, rng: random.Random, cells: list[str]) -> None:
    t = start
    while t < end:
        det.observe_flow(t, _values(rng.choice(CARRIERS), rng.choice(REGIONS), rng.choice(cells)))
        t += 5.0


def _bad(det: IncidentDetector, n: int, t: float, carrier: str, region: str, cell: str | None = None) -> None:
    det.mark_bad(ClusterItem(f"O{n}|SKU-1", f"O{n}", "SKU-1", t, "stalled", _values(carrier, region, cell)))


def _background_cells() -> list[str]:
    return sorted(h3.grid_disk(CENTRE, 8))


def test_slow_carrier_in_one_province_is_one_incident_for_that_pair() -> None:
    rng = random.Random(1)
    det = IncidentDetector("delay", SETTINGS)
    cells = _background_cells()
    _flow(det, 0, 6 * 3600, rng, cells)
    for n in range(20):
        _bad(det, n, 5 * 3600 + n, "SF", "Zhejiang", rng.choice(cells))
    for n in range(20, 24):  # background
        _bad(det, n, 5 * 3600 + n, rng.choice(CARRIERS), rng.choice(REGIONS), rng.choice(cells))
    events = det.advance(6 * 3600)
    assert [e.record["root_cause"] for e in events] == [{"carrier": "SF", "region": "Zhejiang"}]
    assert events[0].type == "incident.opened" and events[0].record["counts"]["current"] >= 20


def test_parent_cause_suppresses_its_children() -> None:
    rng = random.Random(2)
    det = IncidentDetector("delay", SETTINGS)
    cells = _background_cells()
    _flow(det, 0, 6 * 3600, rng, cells)
    for n in range(40):  # SF is slow everywhere
        _bad(det, n, 5 * 3600 + n, "SF", REGIONS[n % len(REGIONS)], rng.choice(cells))
    events = det.advance(6 * 3600)
    assert [e.record["root_cause"] for e in events] == [{"carrier": "SF"}]


def test_neighbouring_h3_cells_merge_into_one_area_incident() -> None:
    rng = random.Random(3)
    det = IncidentDetector("delay", SETTINGS)
    cells = _background_cells()
    _flow(det, 0, 6 * 3600, rng, cells)
    storm = sorted(h3.grid_disk(CENTRE, 1))[:3]  # three touching cells
    for n in range(30):
        _bad(det, n, 5 * 3600 + n, rng.choice(CARRIERS), rng.choice(REGIONS), storm[n % 3])
    events = det.advance(6 * 3600)
    assert len(events) == 1
    root = events[0].record["root_cause"]
    assert events[0].record["dimension"] == "area"
    assert sorted(root["h3_cells"]) == storm
    assert abs(root["lat"] - 30.27) < 0.1 and abs(root["lon"] - 120.15) < 0.1


def _lifecycle_run() -> list[tuple[str, str, str, int]]:
    rng = random.Random(4)
    det = IncidentDetector("delay", SETTINGS)
    cells = _background_cells()
    out: list[tuple[str, str, str, int]] = []
    t, n = 0.0, 0
    while t < 10 * 3600:
        _flow(det, t, t + 300, rng, cells)
        t += 300
        hour = t / 3600
        if 2 <= hour < 4:  # growing outbreak
            for _ in range(int((hour - 1.5) * 6)):
                _bad(det, n, t, "ZTO", "Anhui", rng.choice(cells))
                n += 1
        if 5 <= hour < 6:  # flow resumes: SKUs leave the bad set
            for key in [f"O{i}|SKU-1" for i in range(n)][: int((hour - 4.9) * 20)]:
                det.clear(key, t)
        if hour >= 6:
            for i in range(n):
                det.clear(f"O{i}|SKU-1", t)
        out.extend((e.incident_id, e.type, e.record["state"], e.record["counts"]["current"]) for e in det.advance(t))
    return out


def test_lifecycle_open_growing_recovering_resolved_with_deterministic_ids() -> None:
    run = _lifecycle_run()
    assert len({r[0] for r in run}) == 1
    states = [r[2] for r in run]
    assert states[0] == "open" and run[0][1] == "incident.opened"
    assert "growing" in states and "recovering" in states
    assert states[-1] == "resolved" and run[-1][1] == "incident.resolved"
    assert states.index("growing") < states.index("recovering") < len(states) - 1
    assert _lifecycle_run() == run  # same input, same ids and events


def test_detector_snapshot_round_trip_continues_identically() -> None:
    settings = IncidentSettings(dimensions=["device_id", "source"], min_count=5, expire_items=True)
    a = IncidentDetector("data_quality", settings)
    for i in range(200):
        a.observe_flow(i * 10.0, {"device_id": (f"D{i % 7}",), "source": ("pda",)})
        if i % 7 == 3:
            a.mark_bad(
                ClusterItem(
                    f"e{i}", f"O{i}", "SKU-1", i * 10.0, "future_timestamp", {"device_id": ("D3",), "source": ("pda",)}
                )
            )
    first = a.advance(2000.0)
    b = IncidentDetector.from_dict(settings, json.loads(json.dumps(a.to_dict())))
    assert [e.record["root_cause"] for e in first] == [{"device_id": "D3"}]
    for det in (a, b):
        for i in range(200, 400):
            det.observe_flow(i * 10.0, {"device_id": (f"D{i % 7}",), "source": ("pda",)})
    assert [e.record for e in a.advance(4000.0)] == [e.record for e in b.advance(4000.0)]
    point = incident_line(first[0], first[0].record, 0)
    assert point.startswith("incidents,dimension=device_id,kind=data_quality,state=open ")
    assert "current=" in point and point.endswith(" 1800000000000")
