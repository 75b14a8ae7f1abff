"""Every Kafka topic Order Radar uses, with explicit partition counts, and their creation.

The embedded broker auto-creates unknown topics with 4 partitions, which would silently
break co-partitioning (a table's changelog must have as many partitions as its source), so
``orderradar up``, the test fixtures and ``orderradar topics create`` pre-create them all
(:func:`stream.kafka.admin.ensure_topics`). Names only: importing them pulls in no Kafka client.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings

# Public topics (architecture.md): users and other teams rely on these names.
ORDER_EVENTS = "order-events"
ORDER_EVENTS_DLQ = "order-events-dlq"
ORDER_UPDATES = "order-updates"
WARROOM_UPDATES = "warroom-updates"
ORDER_INCIDENTS = "order-incidents"
ALERTS = "alerts"
#: InfluxDB batches whose write retries were exhausted, replayed when InfluxDB is back.
INFLUX_DLQ = "influx-dlq"
#: Commands to the worker from the web tier (alert ack/resolve/silence, disruption zones).
CONTROL = "orderradar-control"
#: Tracking-link issuance and revocation records; every web instance reads all of it.
TRACKING_TOKENS = "tracking-tokens"
#: Incident lifecycle events forwarded by the delays stage to the single alerting agent.
ALERT_INPUTS = "alert-inputs"
#: The war-room views' partial aggregates per source partition, keyed by view key: the
#: worker owning a partition sums its keys' partials (``stream.core.global_views``).
WARROOM_PARTIALS = "warroom-partials"
#: The table of the views' owners (its changelog is partitioned like ``warroom-partials``).
WARROOM_VIEWS_TABLE = "warroom-views"

PUBLIC_TOPICS = (ORDER_EVENTS, ORDER_EVENTS_DLQ, ORDER_UPDATES, WARROOM_UPDATES, ORDER_INCIDENTS, ALERTS, INFLUX_DLQ)

#: Internal keyed topics with as many partitions as ``order-events``.
KEYED = (WARROOM_PARTIALS,)
#: Faust tables of the worker; each has a changelog with as many partitions as its source
#: (``order-events``; ``warroom-partials`` for the views' owners).
TABLES = ("orders", WARROOM_VIEWS_TABLE)
#: Single-partition topics: global streams that one worker at a time must see in order.
SINGLE_PARTITION = (CONTROL, TRACKING_TOKENS, ALERT_INPUTS)
#: Tables of the single alerting agent: one-partition changelogs.
SINGLE_PARTITION_TABLES = ("alerting",)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    #: ``cleanup.policy=compact``: a changelog keeps the last version of each key (tombstones
    #: of forgotten orders remove them), so a restore reads live state, not history.
    compact: bool = False


def changelog_topic(settings: Settings, table: str) -> str:
    return f"{settings.faust_app_id}-{table}-changelog"


def all_topics(settings: Settings) -> list[TopicSpec]:
    n = settings.partitions
    specs = [TopicSpec(settings.topic(name), n) for name in PUBLIC_TOPICS + KEYED]
    specs += [TopicSpec(settings.topic(name), 1) for name in SINGLE_PARTITION]
    specs += [TopicSpec(changelog_topic(settings, t), n, compact=True) for t in TABLES]
    specs += [TopicSpec(changelog_topic(settings, t), 1, compact=True) for t in SINGLE_PARTITION_TABLES]
    # Faust's leader election topic.
    specs.append(TopicSpec(f"{settings.faust_app_id}-__assignor-__leader", 1))
    return specs
