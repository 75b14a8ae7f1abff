"""Scenario tests with known answers: injected faults must give exactly one incident each,
named after the fault, and random background lateness must give none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from delays_traffic import (
    HOUR,
    BadClock,
    CarrierSlowdown,
    HubOutage,
    Run,
    Scenario,
    at,
    consume,
    generate,
)

from stream.core.delays_engine import DelaysEngine
from stream.core.sla import load_sla_rules

RULES = load_sla_rules(Path(__file__).parent / "testdata" / "scenario_sla.yaml")
END = 44 * HOUR


def _run(scenario: Scenario) -> tuple[DelaysEngine, Run]:
    engine = DelaysEngine(RULES)
    return engine, consume(engine, generate(scenario), until=END)


def _events_of(run: Run, incident_id: str) -> list[dict[str, Any]]:
    return [r for r in run.incidents if r["incident_id"] == incident_id]


def test_hub_that_stops_scanning_is_one_incident_that_resolves_when_scans_resume() -> None:
    outage = HubOutage("HUB-WX", 10 * HOUR, 20 * HOUR)
    engine, run = _run(Scenario(seed=2, outages=[outage]))

    assert len(run.incident_ids()) == 1, run.incidents
    (incident_id,) = run.incident_ids()
    events = _events_of(run, incident_id)
    assert all(e["root_cause"] == {"hub": "HUB-WX"} for e in events)
    assert {e["kind"] for e in events} == {"delay"}
    opened, resolved = events[0], events[-1]
    assert opened["type"] == "incident.opened"
    # stranded parcels stall 8 h after their last scan, so detection follows the outage start
    assert at(outage.start).isoformat() < str(opened["at"]) < at(outage.end).isoformat().replace("+00:00", "Z")
    peak = max(int(e["counts"]["current"]) for e in events)
    assert peak >= 30
    assert max(e["counts"]["by_label"].get("stalled", 0) for e in events) >= 30
    states = [e["state"] for e in events]
    assert "growing" in states
    # flow resumes at 20:00: recovering, then resolved within the hour
    first_recovering = next(e for e in events if e["state"] == "recovering")
    assert str(first_recovering["at"]) >= "2026-03-02T20:00"
    assert resolved["type"] == "incident.resolved" and resolved["state"] == "resolved"
    assert "2026-03-02T20:00" < str(resolved["at"]) <= "2026-03-02T21:30"
    assert states.index("recovering") < len(states) - 1
    assert engine.open_incidents() == []
    assert len(opened["sample_orders"]) > 0
    assert int(resolved["counts"]["orders"]) >= peak * 0.7


def test_carrier_slowdown_in_one_province_names_carrier_and_province() -> None:
    slowdown = CarrierSlowdown("SF", "Zhejiang", 6 * HOUR, 14 * HOUR)
    _engine, run = _run(Scenario(seed=3, slowdowns=[slowdown]))

    assert len(run.incident_ids()) == 1, run.incidents
    events = _events_of(run, run.incident_ids()[0])
    assert all(e["root_cause"] == {"carrier": "SF", "region": "Zhejiang"} for e in events)
    assert all(e["dimension"] == "carrier_region" for e in events)
    assert events[0]["type"] == "incident.opened"
    assert events[-1]["type"] == "incident.resolved"
    assert max(float(e["lift"]) for e in events) > 5


def test_scanner_with_bad_clock_is_one_data_quality_incident_naming_the_device() -> None:
    clock = BadClock("PDA-HUB-WX-1", 8 * HOUR, 3 * HOUR)
    engine, run = _run(Scenario(seed=4, bad_clocks=[clock]))

    assert run.incident_ids("delay") == [], "a skewed clock must not strand SKUs or fire timers"
    assert len(run.incident_ids()) == 1
    events = _events_of(run, run.incident_ids()[0])
    assert {e["kind"] for e in events} == {"data_quality"}
    assert all(e["root_cause"] == {"device_id": "PDA-HUB-WX-1"} for e in events)
    assert set(events[0]["counts"]["by_label"]) == {"future_timestamp"}
    assert str(events[0]["at"]) >= "2026-03-02T08:00"
    assert {f["device_ids"][0] for f in run.findings} == {"PDA-HUB-WX-1"}
    assert all(f["kind"] == "future_timestamp" for f in run.findings)
    # its events still moved SKUs on: nothing is stuck at the end
    assert sum(1 for v in engine.views() if not v.closed) == 0


@pytest.mark.parametrize("seed", [11, 12])
def test_random_background_lateness_yields_no_incident(seed: int) -> None:
    _engine, run = _run(Scenario(seed=seed, background=0.05))

    bad = [t for t in run.transitions if t["delay_state"] in ("late", "stalled")]
    assert len(bad) >= 50, "the background must really produce late and stalled SKUs"
    assert run.incidents == []
    assert run.findings == []
