"""Changelog topics are created compacted (issue #20): Kafka keeps the last version of each
order (retention's tombstones remove forgotten ones), so a restore reads live state only."""

from __future__ import annotations

from config.settings import Settings
from stream.topics import TABLES, all_topics, changelog_topic


def test_changelogs_and_only_they_are_created_compacted() -> None:
    settings = Settings(topic_prefix="tcompact-")
    specs = {s.name: s for s in all_topics(settings)}
    changelogs = {name for name in specs if name.endswith("-changelog")}
    assert {changelog_topic(settings, t) for t in TABLES} <= changelogs
    assert {name for name, s in specs.items() if s.compact} == changelogs
