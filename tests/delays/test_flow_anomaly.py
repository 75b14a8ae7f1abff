"""Flow checks (stream.core.flow_anomaly): drop and surge of a key's event flow, as a pure core.

Synthetic flows are regular (the same number of orders of each key every slot), so any
incident is the check's doing; the slow test at the end feeds the simulator at the demo's
rate with its documented scenarios.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h3
import pytest
import shapely
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from config.rules import RuleFileError
from stream.contract import OrderEvent, Status
from stream.core.delays_engine import DelaysEngine
from stream.core.flow_anomaly import FlowAnomalyDetector, FlowSettings, poisson_cdf
from stream.core.incident_model import IncidentChange
from stream.core.sla import DEFAULT_SLA_PATH, load_sla_rules

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
SETTINGS = FlowSettings()
STEP = 60.0


def _naive_cdf(n: int, mu: float) -> float:
    return sum(math.exp(-mu + k * math.log(mu) - math.lgamma(k + 1)) for k in range(n + 1))


@given(st.integers(min_value=0, max_value=300), st.floats(min_value=0.01, max_value=400))
@settings(max_examples=300, deadline=None)
def test_the_poisson_lower_tail_matches_the_sum_of_its_terms(n: int, mu: float) -> None:
    cdf = poisson_cdf(n, mu)
    assert cdf == pytest.approx(min(1.0, _naive_cdf(n, mu)), rel=1e-9, abs=1e-11)
    assert poisson_cdf(n, mu) <= poisson_cdf(n + 1, mu) + 1e-12


class Flow:
    """Orders of fixed keys, spread evenly over each minute, fed to a detector."""

    def __init__(self, detector: FlowAnomalyDetector | None = None) -> None:
        self.detector = detector or FlowAnomalyDetector(SETTINGS)
        self.events: list[IncidentChange] = []
        self._n = 0

    def minute(self, minute: int, lanes: Iterable[tuple[int, dict[str, Any]]], received: float | None = None) -> None:
        batch = [fields for count, fields in lanes for _ in range(count)]
        for i, fields in enumerate(batch):
            at = T0 + minute * STEP + STEP * i / max(len(batch), 1)
            self._n += 1
            status = fields.get("status", Status.HUB_ARRIVAL)
            event = OrderEvent(
                event_id=f"e{self._n}",
                order_id=f"o{self._n}",
                sku="s",
                status=status,
                event_time=datetime.fromtimestamp(at, UTC),
                **{k: v for k, v in fields.items() if k != "status"},
            )
            self.detector.observe(at, event)
        # the flow clock: the minute is complete (lateness passed) once the next one starts
        self.events.extend(self.detector.advance(T0 + (minute + 1) * STEP, received))

    def minutes(self, minutes: Iterable[int], lanes: list[tuple[int, dict[str, Any]]]) -> Flow:
        """The same lanes in each of ``minutes``."""
        for minute in minutes:
            self.minute(minute, lanes)
        return self

    def opened(self) -> list[dict[str, Any]]:
        return [e.record for e in self.events if e.type == "incident.opened"]


def _lanes(stopped: set[str] = frozenset(), slow: dict[str, int] | None = None) -> list[tuple[int, dict[str, Any]]]:
    slow = slow or {}
    base = [
        (20, {"source": "wms", "region": "440000", "carrier": "SF", "status": Status.PICKED}),
        (20, {"source": "sf-tms", "region": "440000", "carrier": "SF", "node": "GZ-1"}),
        (20, {"source": "jd-tms", "region": "440000", "carrier": "JD", "node": "SZ-1"}),
        (20, {"source": "zto-tms", "region": "440000", "carrier": "ZTO", "node": "FS-1"}),
        (20, {"source": "jd-tms", "region": "330000", "carrier": "JD", "node": "HZ-3"}),
        (20, {"source": "sf-tms", "region": "330000", "carrier": "SF", "node": "HZ-1"}),
        (3, {"source": "tiny-tms", "region": "650000", "carrier": "EMS", "node": "UR-1"}),
        (8, {"source": "douyin-oms", "region": "330000", "channel": "douyin", "status": Status.PAID}),
        (8, {"source": "tmall-oms", "region": "330000", "channel": "tmall", "status": Status.PAID}),
    ]
    out = []
    for count, fields in base:
        name = fields["source"] + "/" + fields.get("node", fields.get("channel", ""))
        if name in stopped or fields["source"] in stopped or fields.get("node") in stopped:
            continue
        out.append((slow.get(fields.get("node", ""), count), fields))
    return out


def test_a_steady_flow_opens_nothing() -> None:
    flow = Flow().minutes(range(60), _lanes())
    assert flow.events == []


def test_a_hub_that_stops_scanning_is_named_within_a_minute_and_resolves_after_it_resumes() -> None:
    flow = Flow().minutes(range(10), _lanes())
    flow.minute(10, _lanes(stopped={"HZ-3"}))
    (opened,) = flow.opened()
    assert opened["root_cause"] == {"hub": "HZ-3"} and opened["kind"] == "flow"
    assert opened["flow"]["check"] == "drop" and opened["flow"]["observed"] == 0
    assert opened["at"].startswith("2026-12-07T12:11:00")
    # a long outage stays one open incident (the baseline is frozen)
    flow.minutes(range(11, 40), _lanes(stopped={"HZ-3"}))
    states = [e.record["state"] for e in flow.events]
    assert states[0] == "open" and set(states[1:]) == {"stable"}
    # published again only as its estimate of parcel scans behind grows by a tenth (stream.core.flow_incidents)
    behind = [e.record["flow"]["shortfall"] for e in flow.events]
    assert all(10 * (later - earlier) >= earlier for earlier, later in zip(behind[1:], behind[2:], strict=False))
    flow.minutes(range(40, 50), _lanes())
    assert [e.record["state"] for e in flow.events][len(states) :] == ["recovering", "resolved"]
    assert len({e.incident_id for e in flow.events}) == 1


def test_a_source_that_goes_silent_is_named() -> None:
    flow = Flow().minutes(range(10), _lanes())
    flow.minutes(range(10, 12), _lanes(stopped={"wms"}))
    assert [r["root_cause"] for r in flow.opened()] == [{"source": "wms"}]


def test_a_backfill_read_minute_by_minute_is_no_baseline() -> None:
    """The demo's backfill: an hour of thin past scans arrives within seconds, one slot per
    evaluation. Its flow must not become the baseline (a twentieth of the live rate), or
    the live flow would never be judged against what is normal."""
    flow = Flow()
    arrival = T0 + 5 * 3600.0  # the backfill arrives hours after its event times
    for minute in range(60):
        flow.minute(minute, [(1, fields) for _, fields in _lanes()], received=arrival + minute * 0.1)
    assert flow.events == []
    offset = arrival + 10.0 - (T0 + 60 * STEP)  # then the live flow, as late as the last backfill scan
    for minute in range(60, 70):
        flow.minute(
            minute, _lanes(stopped={"HZ-3"} if minute >= 67 else set()), received=T0 + (minute + 1) * STEP + offset
        )
    assert [r["root_cause"] for r in flow.opened()] == [{"hub": "HZ-3"}]


def test_quiet_keys_and_young_keys_never_fire() -> None:
    flow = Flow().minutes(range(10), _lanes())
    flow.minutes(range(10, 20), _lanes(stopped={"tiny-tms"}))  # 3 orders a minute: 9 expected in the longest window
    assert flow.events == []
    young = Flow()
    young.minute(0, _lanes())
    young.minute(1, _lanes())
    young.minute(2, _lanes(stopped={"HZ-3"}))
    young.minute(3, _lanes(stopped={"HZ-3"}))
    assert young.events == []  # two minutes of history are no baseline yet (warmup 3m)


def test_a_province_slowing_down_names_the_province_and_one_stopped_hub_there_names_the_hub() -> None:
    flow = Flow().minutes(range(10), _lanes())
    guangdong = [(c // 4 if f["region"] == "440000" else c, f) for c, f in _lanes()]
    flow.minutes(range(10, 12), guangdong)
    causes = [r["root_cause"] for r in flow.opened()]
    assert {"region": "440000"} in causes
    assert not [c for c in causes if "carrier" in c], causes  # every carrier there: the province

    one = Flow().minutes(range(10), _lanes())
    one.minutes(range(10, 12), _lanes(stopped={"jd-tms/SZ-1"}))
    # the hub, JD in Guangdong and jd-tms lost the same events: one anomaly, named by the
    # dimension listed first; the province is not significant without them
    assert [r["root_cause"] for r in one.opened()] == [{"hub": "SZ-1"}]


def test_a_flash_sale_is_a_surge_of_its_channel() -> None:
    flow = Flow().minutes(range(10), _lanes())
    sale = [(c * 20 if f.get("channel") == "douyin" else c, f) for c, f in _lanes()]
    flow.minute(10, sale)
    (opened,) = flow.opened()
    assert opened["root_cause"] == {"channel": "douyin"} and opened["flow"]["check"] == "surge"


def test_neighbouring_cells_that_go_quiet_are_one_area_located_among_them() -> None:
    centre = h3.latlng_to_cell(25.0, 118.6, SETTINGS.h3_resolution)
    near = sorted(set(h3.grid_disk(centre, 1)) - {centre})[0]
    far = h3.latlng_to_cell(39.9, 116.4, SETTINGS.h3_resolution)

    def lanes(stopped: bool) -> list[tuple[int, dict[str, Any]]]:
        out = []
        for cell in (centre, near, far):
            if stopped and cell != far:
                continue
            lat, lon = h3.cell_to_latlng(cell)
            out.append((15, {"source": f"tms-{cell[-6:]}", "lat": lat, "lon": lon}))
        return out

    flow = Flow(FlowAnomalyDetector(SETTINGS.model_copy(update={"drop_dimensions": ["area"]})))
    flow.minutes(range(10), lanes(False))
    flow.minutes(range(10, 12), lanes(True))
    (opened,) = flow.opened()
    assert opened["dimension"] == "area" and sorted(opened["root_cause"]["h3_cells"]) == sorted([centre, near])
    hull = shapely.MultiPoint([h3.cell_to_latlng(c)[::-1] for c in (centre, near)]).buffer(0.5)
    assert shapely.contains_xy(hull, opened["location"]["lon"], opened["location"]["lat"])


def test_a_restored_detector_continues_with_the_same_decisions() -> None:
    whole, first = Flow(), Flow()
    for minute in range(10):
        whole.minute(minute, _lanes())
        first.minute(minute, _lanes())
    second = Flow(FlowAnomalyDetector.from_dict(SETTINGS, first.detector.to_dict()))
    for minute in range(10, 16):
        whole.minute(minute, _lanes(stopped={"HZ-3"}))
        second.minute(minute, _lanes(stopped={"HZ-3"}))
    assert [e.record for e in second.events] == [e.record for e in whole.events] != []


def _write(tmp_path: Path, flow: dict[str, Any]) -> Path:
    data = yaml.safe_load(DEFAULT_SLA_PATH.read_text())
    data["incidents"]["flow"].update(flow)
    path = tmp_path / "sla.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("flow", "problem"),
    [
        ({"window": "150s"}, "window must be a whole multiple of eval_every"),
        ({"drop_dimensions": ["hub", "planet"]}, "unknown dimension 'planet'"),
        ({"drop_ratio": 2}, "less than 1"),
        ({"order_statuses": ["bought"]}, "incidents.flow.order_statuses"),
        ({"speed": 3}, "incidents.flow.speed"),
    ],
)
def test_flow_settings_errors_name_file_field_and_problem(tmp_path: Path, flow: dict[str, Any], problem: str) -> None:
    path = _write(tmp_path, flow)
    with pytest.raises(RuleFileError) as caught:
        load_sla_rules(path)
    text = str(caught.value)
    assert str(path) in text and "incidents.flow" in text and problem in text, text


def test_shipped_rules_turn_the_flow_checks_on() -> None:
    flow = load_sla_rules().incidents.flow
    assert flow is not None and flow.eval_every == timedelta(minutes=1) and flow.lateness <= timedelta(minutes=1)


def test_the_delays_engine_runs_the_flow_checks_on_simulated_time_behind_the_wall_clock() -> None:
    """The demo's simulator runs hours behind the wall clock: ticks raise idle partitions'
    watermarks to the wall clock, which must not make every simulated event late."""
    engine = DelaysEngine(load_sla_rules())
    engine.expect_partitions(range(2))
    wall_ahead = 5 * 3600.0
    engine.tick(datetime.fromtimestamp(T0 + wall_ahead, UTC))
    opened: list[dict[str, Any]] = []
    n = 0
    for minute in range(12):
        batch = [f for c, f in _lanes(stopped={"HZ-3"} if minute >= 10 else set()) for _ in range(c)]
        for i, fields in enumerate(batch):
            n += 1
            at = T0 + minute * STEP + STEP * i / len(batch)
            status = fields.get("status", Status.HUB_ARRIVAL)
            event = OrderEvent(
                event_id=f"e{n}",
                order_id=f"o{n}",
                sku="s",
                status=status,
                event_time=datetime.fromtimestamp(at, UTC),
                **{k: v for k, v in fields.items() if k != "status"},
            )
            received = at + wall_ahead
            result = engine.process(
                [event], partition=n % 2, now=datetime.fromtimestamp(received, UTC), received_at=[received]
            )
            opened += [e.record for e in result.incidents if e.record["kind"] == "flow"]
    assert [r["root_cause"] for r in opened] == [{"hub": "HZ-3"}]
    assert opened[0]["at"].startswith("2026-12-07T12:11:00")
    assert [r["root_cause"] for r in engine.open_incidents() if r["kind"] == "flow"] == [{"hub": "HZ-3"}]
    restored = DelaysEngine.from_dict(engine.rules, engine.to_dict())
    assert restored.flow is not None and [i.signature for i in restored.flow.open_incidents] == [
        i.signature for i in engine.flow.open_incidents
    ]
