"""Fixtures of the gateway tests: staff accounts (hashed once) and gateway factories."""

from __future__ import annotations

import pytest

from dashboard.gateway.staff import StaffDirectory
from gateway.harness import build_staff


@pytest.fixture(scope="session")
def staff() -> StaffDirectory:
    return build_staff()
