"""The policy file: the shipped one loads, bad ones fail naming file, field and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from alerting_testkit import POLICY_YAML, write_policy

from alerting.incident import IncidentEvent
from alerting.policy import DEFAULT_POLICY_PATH, load_policy
from alerting.routing import match_routes
from alerting.tier import Tier
from config.rules import RuleFileError


def test_shipped_policy_loads_and_routes() -> None:
    policy = load_policy(DEFAULT_POLICY_PATH)
    assert set(policy.tiers.levels) == set(Tier)
    [late] = match_routes(policy.route, {"kind": "order_late", "region": "330000"})
    assert late.receiver == "cs-chat" and late.escalation is None  # explicit null wins
    [east] = match_routes(policy.route, {"kind": "hub_stall", "region": "330000"})  # Zhejiang
    assert east.escalation == "ops-east" and east.group_wait.total_seconds() == 30  # inherited
    [default] = match_routes(policy.route, {"kind": "hub_stall", "region": "110000"})  # Beijing
    assert default.route_id == "root" and default.escalation == "ops-default"


def test_continue_matches_several_routes(tmp_path: Path) -> None:
    text = POLICY_YAML.replace(
        "    - matchers: ['kind=\"order_late\"']",
        "    - matchers: ['region=\"east\"']\n      continue: true\n      receiver: manager-mail\n"
        "    - matchers: ['kind=\"order_late\"']",
    )
    policy = load_policy(write_policy(tmp_path, text))
    routes = match_routes(policy.route, {"kind": "order_late", "region": "east"})
    assert [r.receiver for r in routes] == ["manager-mail", "cs-chat"]


BAD = [
    ("receiver: cs-chat\n", "receiver: nobody\n", "route.routes[0].receiver: unknown receiver 'nobody'"),
    ("group_wait: 30s", "group_wait: soon", "route.group_wait: Value error, 'soon' must be a duration"),
    ("['kind=\"order_late\"']", "['kind=order_late']", "route.routes[0].matchers[0]: Value error, bad matcher"),
    ("group_by: [node]", "group_by: [node, node]", "duplicated label 'node' in group_by"),
    ("{participants: [alice]", "{participants: [zed]", "schedules.primary: unknown user 'zed'"),
    (
        "escalate_after: 15m}",
        "escalate_after: 15m}\n      - {targets: [{user: x, receiver: y}]}",
        "a target names exactly one of schedule, user, receiver",
    ),
    ("  ops-chat: {type: log}", "  ops-chat: {type: pigeon}", "receivers.ops-chat: Input tag 'pigeon'"),
    ("P4: {notify: false}", "P4: {notify: false, when: [{min_affected_orders: 1}]}", "levels.P4.when: P4 is the floor"),
    ("P3: {when: [{min_affected_orders: 10}", "P3: {when: [{}", "a condition needs at least one threshold"),
    ("primary: {rotations", "primary: {time_zone: Mars/Olympus, rotations", "unknown time zone 'Mars/Olympus'"),
    ("escalation: ops\n", "escalation: opz\n", "route.escalation: unknown escalation policy 'opz'"),
    ("default_language: en", "default_language: fr", "default_language: Input should be 'en' or 'zh-CN'"),
]


@pytest.mark.parametrize(("old", "new", "expected"), BAD)
def test_bad_policy_names_file_field_and_problem(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in POLICY_YAML
    path = write_policy(tmp_path, POLICY_YAML.replace(old, new, 1))
    with pytest.raises(RuleFileError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert expected in message


def test_incident_event_is_strict() -> None:
    base = {
        "incident_id": "i",
        "kind": "hub_stall",
        "state": "open",
        "first_seen": "2025-03-03T10:00:00+08:00",
        "updated_at": "2025-03-03T10:00:00+08:00",
        "title": "t",
        "labels": {"region": "east"},
    }
    assert IncidentEvent.model_validate(base).labels == {"region": "east"}
    for bad in (
        {"state": "exploded"},
        {"first_seen": "2025-03-03T10:00:00"},  # naive time
        {"labels": {"tier": "P1"}},  # reserved
        {"unknown": 1},
        {"affected_orders": -1},
    ):
        with pytest.raises(ValueError):
            IncidentEvent.model_validate({**base, **bad})
