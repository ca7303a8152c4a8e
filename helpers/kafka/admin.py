"""TODO docstring (from helpers/kafka, streaming.py)."""

from __future__ import annotations

from typing import Any

from helpers.kafka.clients import ADMIN_BOUNDS
from helpers.platform.config import kafka_bootstrap_servers


def ensure_topic(name: str, partitions: int = 1) -> None:
    """Create ``name`` with ``partitions`` partitions unless it already exists."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers())
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def admin_client():
    """Return a bounded ``KafkaAdminClient`` (close it when done)."""
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers(), **ADMIN_BOUNDS)


def describe_topic(name: str) -> dict[str, Any]:
    """Return ``{"name", "partitions", "retention_ms", "configs"}`` of an existing topic.

    ``configs`` holds every topic-level setting the broker reports (value strings).

    Raises:
        KeyError: when the topic does not exist.
    """
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = admin_client()
    try:
        topics = [t for t in admin.describe_topics([name]) if t.get("error_code", 0) == 0 and t["partitions"]]
        if not topics:
            raise KeyError(f"topic {name!r} does not exist")
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)],
                                         config_filter="all")["topic"][name]
    finally:
        admin.close()
    values = {key: entry["value"] for key, entry in configs.items()}
    return {"name": name, "partitions": len(topics[0]["partitions"]),
            "retention_ms": int(values.get("retention.ms", -1)), "configs": values}


def end_offsets(topic: str) -> dict[int, int]:
    """Return ``{partition: next offset}`` of ``topic`` (how many messages each partition holds)."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    admin = admin_client()
    try:
        parts = [p["partition_index"] for t in admin.describe_topics([topic]) for p in t["partitions"]]
        offsets = admin.list_partition_offsets({TopicPartition(topic, p): OffsetSpec.LATEST for p in parts})
    finally:
        admin.close()
    return {tp.partition: info.offset for tp, info in offsets.items()}


def committed_offsets(group_id: str, topic: str) -> dict[int, int]:
    """Return ``{partition: committed offset}`` of ``group_id`` on ``topic`` (missing: nothing committed)."""
    admin = admin_client()
    try:
        offsets = admin.list_group_offsets({group_id: None}).get(group_id, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}


def group_members(group_id: str) -> dict[str, list[int]]:
    """Return ``{client_id: [partitions]}`` of the live members of ``group_id`` (empty: nobody is in it)."""
    admin = admin_client()
    try:
        group = admin.describe_groups([group_id]).get(group_id, {})
    finally:
        admin.close()
    members: dict[str, list[int]] = {}
    for member in group.get("members") or []:
        assigned = (member.get("member_assignment") or {}).get("assigned_partitions", [])
        members[member["client_id"]] = sorted(p for a in assigned for p in a["partitions"])
    return members


def consumer_lag(group_id: str, topic: str) -> dict[int, int]:
    """Return ``{partition: lag}``: messages in the log that ``group_id`` has not committed yet."""
    ends = end_offsets(topic)
    done = committed_offsets(group_id, topic)
    return {p: max(0, end - done.get(p, 0)) for p, end in sorted(ends.items())}
