"""Kafka admin queries: topics, offsets, consumer-group members and lag (one implementation each).

Each function opens its own bounded admin client, or reuses the one passed as ``admin`` (a monitor
thread sampling every half second keeps one open: :class:`helpers.streaming.monitor.GroupMonitor`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from helpers.kafka.clients import ADMIN_BOUNDS, require_broker


def admin_client() -> Any:
    """Return a bounded ``KafkaAdminClient`` (close it when done); fails fast if no broker answers."""
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=require_broker(), **ADMIN_BOUNDS)


@contextmanager
def admin_session(admin: Any = None) -> Iterator[Any]:
    """Yield ``admin`` if given (left open), else a new bounded client closed on exit."""
    if admin is not None:
        yield admin
        return
    own = admin_client()
    try:
        yield own
    finally:
        own.close()


def ensure_topic(name: str, partitions: int = 1, timeout_s: float = 10.0) -> None:
    """Create ``name`` with ``partitions`` partitions unless it exists; return once the broker lists it.

    Raises:
        TimeoutError: the topic was created but is still not in the cluster's metadata after ``timeout_s``.
    """
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    with admin_session() as admin:
        try:
            admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        except TopicAlreadyExistsError:
            pass
        deadline = time.monotonic() + timeout_s
        while name not in admin.list_topics():  # metadata catches up a moment after the create
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name!r} was created but the broker did not list it within {timeout_s} s")
            time.sleep(0.05)


def describe_topic(name: str) -> dict[str, Any]:
    """Return ``{"name", "partitions", "retention_ms", "configs"}`` of an existing topic.

    ``configs`` holds every topic-level setting the broker reports (value strings).

    Raises:
        KeyError: when the topic does not exist.
    """
    from kafka.admin import ConfigResource, ConfigResourceType

    with admin_session() as admin:
        topics = [t for t in admin.describe_topics([name]) if t.get("error_code", 0) == 0 and t["partitions"]]
        if not topics:
            raise KeyError(f"topic {name!r} does not exist")
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)],
                                         config_filter="all")["topic"][name]
    values = {key: entry["value"] for key, entry in configs.items()}
    return {"name": name, "partitions": len(topics[0]["partitions"]),
            "retention_ms": int(values.get("retention.ms", -1)), "configs": values}


def end_offsets(topic: str, admin: Any = None) -> dict[int, int]:
    """Return ``{partition: next offset}`` of ``topic`` (how many messages each partition holds)."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    with admin_session(admin) as client:
        parts = [p["partition_index"] for t in client.describe_topics([topic]) for p in t["partitions"]]
        offsets = client.list_partition_offsets({TopicPartition(topic, p): OffsetSpec.LATEST for p in parts})
    return {tp.partition: info.offset for tp, info in offsets.items()}


def committed_offsets(group_id: str, topic: str, admin: Any = None) -> dict[int, int]:
    """Return ``{partition: committed offset}`` of ``group_id`` on ``topic`` (missing: nothing committed)."""
    with admin_session(admin) as client:
        offsets = client.list_group_offsets({group_id: None}).get(group_id, {})
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}


def describe_group(group_id: str, admin: Any = None, topic: str | None = None) -> dict[str, Any]:
    """Return ``{"state": group state, "members": {client_id: [partitions]}}`` (of ``topic`` only, if given)."""
    with admin_session(admin) as client:
        group = client.describe_groups([group_id]).get(group_id, {})
    members: dict[str, list[int]] = {}
    for member in group.get("members") or []:
        assigned = (member.get("member_assignment") or {}).get("assigned_partitions", [])
        members[member["client_id"]] = sorted(p for a in assigned if topic in (None, a["topic"])
                                              for p in a["partitions"])
    return {"state": group.get("group_state"), "members": members}


def group_members(group_id: str, admin: Any = None) -> dict[str, list[int]]:
    """Return ``{client_id: [partitions]}`` of the live members of ``group_id`` (empty: nobody is in it)."""
    return describe_group(group_id, admin)["members"]


def consumer_lag(group_id: str, topic: str, admin: Any = None) -> dict[int, int]:
    """Return ``{partition: lag}``: messages in the log that ``group_id`` has not committed yet."""
    with admin_session(admin) as client:
        ends = end_offsets(topic, client)
        done = committed_offsets(group_id, topic, client)
    return {p: max(0, end - done.get(p, 0)) for p, end in sorted(ends.items())}
