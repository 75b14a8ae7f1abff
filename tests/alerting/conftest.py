"""Fixtures of the alerting tests: the small known policy of ``alerting_testkit`` and an engine on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from alerting_testkit import make_policy

from alerting.engine import AlertEngine
from alerting.policy import AlertPolicy


@pytest.fixture
def policy(tmp_path: Path) -> AlertPolicy:
    return make_policy(tmp_path)


@pytest.fixture
def engine(policy: AlertPolicy) -> AlertEngine:
    return AlertEngine(policy)
