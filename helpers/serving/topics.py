"""Lab 05's topics: ``user-events`` -> ``features`` -> ``predictions``, and ``dead-letter-queue``."""

from __future__ import annotations

import time

from helpers.kafka.clients import ADMIN_BOUNDS

TOPICS = {"events": "user-events", "features": "features", "predictions": "predictions", "dlq": "dead-letter-queue"}
"""The pipeline's topics by role."""


def ensure_topics(names: dict[str, str] | None = None, *, bootstrap: str | None = None, partitions: int = 6,
                  replication: int = 1, min_insync: int | None = None, timeout_s: float = 15.0) -> dict[str, str]:
    """Create the pipeline's topics unless they exist (the DLQ with one partition); return ``names``.

    Args:
        names: ``{role: topic}`` (default :data:`TOPICS`).
        bootstrap: the cluster (default: the configured one).
        partitions: partitions of the data topics (keyed by user: one user's events stay in order).
        replication: replicas of each partition (3 on the lab's cluster; 1 on the single broker).
        min_insync: ``min.insync.replicas`` (2 on the cluster: an ``acks=all`` write survives one node).
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    from helpers.platform.config import kafka_bootstrap_servers

    names = dict(names or TOPICS)
    configs = {"min.insync.replicas": str(min_insync)} if min_insync else {}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap or kafka_bootstrap_servers(), **ADMIN_BOUNDS)
    try:
        for role, topic in names.items():
            try:
                admin.create_topics([NewTopic(topic, num_partitions=1 if role == "dlq" else partitions,
                                              replication_factor=replication, topic_configs=configs)])
            except TopicAlreadyExistsError:
                pass
        deadline = time.monotonic() + timeout_s
        while not set(names.values()) <= set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics {sorted(names.values())} were created but not all listed within {timeout_s} s")
            time.sleep(0.05)
    finally:
        admin.close()
    return names
