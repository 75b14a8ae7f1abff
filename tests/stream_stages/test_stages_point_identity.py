"""Point identity of ``incidents`` and ``alert_events`` (issue 16; in-process pipeline and
alerting agent, real broker and InfluxDB).

Two hubs go down at once: their incidents are evaluated in the same slots with the same
tags (kind, dimension, state), and their alerts are decided at the same instant with the
same tags. Every incident event and every alert record must still be its own point.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from pathlib import Path

import orjson
import pytest
import test_stages_pipeline
import yaml
from stages_scenario import HUBS, Sent, fast_rules, outage_traffic
from stream_harness import influx_query, read_topic
from test_stages_pipeline import alert_on, run_outage

from alerting.decisions import TAG_LABELS
from config.settings import Settings
from stream.topics import ALERTS, ORDER_INCIDENTS

pytestmark = pytest.mark.integration

#: The second hub down (HUB-A is the scenario's): far enough not to share an H3 area.
SECOND_HUB = "HUB-D"


def two_hub_outage(start: datetime, minutes: int, outage_after: int) -> list[Sent]:
    """The scenario's traffic, with ``SECOND_HUB``'s parcels replaced by a twin of each
    ``HUB-A`` parcel at the same times: both hubs' parcels stall together, so their
    incidents are evaluated in the same slots."""
    second = list(HUBS).index(SECOND_HUB)
    out = []
    for sent in outage_traffic(start, minutes, outage_after):
        e = sent.event
        n = int(e.order_id[1:]) % len(HUBS)
        if n != second:
            out.append(sent)
        if n == 0:  # a HUB-A parcel
            twin = "D" + e.order_id[1:]
            update: dict[str, object] = {"order_id": twin, "event_id": twin + e.event_id[len(e.order_id) :]}
            if e.node == "HUB-A":
                update.update(node=SECOND_HUB, lat=HUBS[SECOND_HUB][0], lon=HUBS[SECOND_HUB][1])
            out.append(Sent(e.model_copy(update=update), sent.received))
    return out


def test_incidents_and_alert_records_sharing_time_and_tags_are_distinct_points(
    stack_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = stack_settings
    monkeypatch.setattr(test_stages_pipeline, "outage_traffic", two_hub_outage)
    rules = fast_rules(tmp_path / "sla.yaml")
    config = yaml.safe_load(rules.read_text())
    config["incidents"]["dimensions"] = ["hub"]  # one incident per hub, not one for the stage
    rules.write_text(yaml.safe_dump(config, allow_unicode=True))
    asyncio.run(run_outage(settings, rules))

    incidents = [orjson.loads(r.value) for r in asyncio.run(read_topic(settings, settings.topic(ORDER_INCIDENTS)))]
    roots = {r["root_cause"].get("hub") for r in incidents}
    assert {"HUB-A", SECOND_HUB} <= roots, [(r["at"], r["dimension"], r["root_cause"], r["state"]) for r in incidents]
    shared = Counter((r["at"], r["kind"], r["dimension"], r["state"]) for r in incidents)
    assert max(shared.values()) >= 2, "precondition: incident events with the same slot and tags"
    assert influx_query(settings, 'SELECT count("incident_id") FROM "incidents"')[0][1] == len(incidents)

    # Alerts: HUB-A's opening event and a twin of it for the other hub, decided at the
    # same instant (two agent calls given the same now): same tier, same tags.
    opened = next(r for r in incidents if r["event"] == "incident.opened" and r["root_cause"].get("hub") == "HUB-A")
    twin = {**opened, "incident_id": opened["incident_id"] + "-twin", "root_cause": {"hub": SECOND_HUB}}
    asyncio.run(alert_on(settings, [opened, twin]))
    alerts = [orjson.loads(r.value) for r in asyncio.run(read_topic(settings, settings.topic(ALERTS)))]
    assert len({a["alert_id"] for a in alerts if a["event"] == "fired"}) == 2, alerts
    same = Counter(
        (
            a["at"],
            a["event"],
            a.get("tier"),
            a.get("receiver"),
            tuple(sorted((k, v) for k, v in a["labels"].items() if k in TAG_LABELS)),
        )
        for a in alerts
    )
    assert max(same.values()) >= 2, "precondition: alert records with the same instant and tags"
    points = influx_query(settings, 'SELECT count("record_id"), count(distinct("record_id")) FROM "alert_events"')
    assert points[0][1:] == [len(alerts), len(alerts)]
