"""Topic administration: create the missing topics and check every partition count.

The embedded broker auto-creates unknown topics with 4 partitions, so every topic in
:func:`stream.topics.all_topics` is created here, before any client touches it.
"""

from __future__ import annotations

import logging

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import ClusterAuthorizationFailedError, TopicAlreadyExistsError, TopicAuthorizationFailedError

from config.client_auth import kafka_auth
from config.settings import Settings
from stream.topics import TopicSpec, all_topics

log = logging.getLogger(__name__)


class TopicMismatch(RuntimeError):
    """A topic exists with a different partition count than the design requires."""


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[TopicSpec]:
    """Create missing topics; fail loudly when an existing one has the wrong partition count."""
    specs = all_topics(settings)
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        bootstrap_timeout_ms=int(timeout_s * 1000),
        **kafka_auth(settings),
    )
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            s.name,
                            s.partitions,
                            settings.replication_factor,
                            topic_configs={"cleanup.policy": "compact"} if s.compact else {},
                        )
                        for s in missing
                    ]
                )
            except TopicAlreadyExistsError:
                pass  # another process won the race; checked below
            except (ClusterAuthorizationFailedError, TopicAuthorizationFailedError) as exc:
                # Production principals may not create topics (docs/security.md): the admin does.
                raise TopicMismatch(
                    f"missing topics {', '.join(s.name for s in missing)} and Kafka user "
                    f"{settings.kafka_username!r} may not create them ({type(exc).__name__}): "
                    "run `orderradar topics` with the admin principal"
                ) from None
            log.info("created topics: %s", ", ".join(s.name for s in missing))
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics([s.name for s in specs])}
    finally:
        admin.close()
    wrong = [
        f"{s.name} has {described.get(s.name)} partitions, expected {s.partitions}"
        for s in specs
        if described.get(s.name) != s.partitions
    ]
    if wrong:
        raise TopicMismatch("; ".join(wrong))
    return specs
