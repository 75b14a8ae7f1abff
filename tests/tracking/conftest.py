"""Fixtures of the tracking-page tests: the web server (killable) and the bus, per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.settings import Settings
from tracking.stack import Bus, WebServer


@pytest.fixture
def web(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    server = WebServer(stack_settings, tmp_path_factory.mktemp("web")).start()
    yield server
    server.stop()


@pytest.fixture
def bus(stack_settings: Settings) -> Iterator[Bus]:
    producer = Bus(stack_settings)
    yield producer
    producer.close()
