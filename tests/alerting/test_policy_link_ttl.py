"""The policy's ``link_ttl`` is refused at load time beyond what the web tier accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from alerting_testkit import POLICY_YAML, write_policy

from alerting.links import MAX_LINK_LIFETIME
from alerting.policy import load_policy
from config.rules import RuleFileError

LANGUAGE = "default_language: en\n"


@pytest.mark.parametrize(
    ("ttl", "problem"),
    [
        ("8d", "link_ttl: Value error, at most 7 days: the server refuses alert links that live longer"),
        ("169h", "link_ttl: Value error, at most 7 days"),
        ("0s", "link_ttl: Value error, must be positive"),
    ],
)
def test_a_link_ttl_the_server_would_refuse_fails_the_load(tmp_path: Path, ttl: str, problem: str) -> None:
    assert LANGUAGE in POLICY_YAML
    path = write_policy(tmp_path, POLICY_YAML.replace(LANGUAGE, f"{LANGUAGE}link_ttl: {ttl}\n", 1))
    with pytest.raises(RuleFileError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and problem in message


def test_seven_days_is_the_longest_link_ttl_accepted(tmp_path: Path) -> None:
    path = write_policy(tmp_path, POLICY_YAML.replace(LANGUAGE, f"{LANGUAGE}link_ttl: 7d\n", 1))
    assert load_policy(path).link_ttl == MAX_LINK_LIFETIME
