"""Settings for an isolated run on a shared broker and InfluxDB: own topics, own database.

Tests and benchmarks share one broker and one influxd per session; each run gets a unique
topic prefix and database, with every topic pre-created and the database created.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from config.settings import Settings
from orderradar.devstack.influx import create_database
from stream.kafka.admin import ensure_topics


def isolated_settings(bootstrap: str, influx_url: str, data_dir: Path, **overrides: object) -> Settings:
    tag = uuid.uuid4().hex[:10]
    settings = Settings(
        kafka_bootstrap=bootstrap,
        topic_prefix=f"t{tag}-",
        influx_url=influx_url,
        influx_db=f"t_{tag}",
        data_dir=data_dir,
        **overrides,  # type: ignore[arg-type]
    )
    ensure_topics(settings)
    create_database(settings.influx_url, settings.influx_db)
    return settings
