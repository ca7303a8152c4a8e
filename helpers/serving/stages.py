"""The two stages of Lab 05's streaming inference, as batch handlers for :func:`helpers.serving.loop.serve`.

- :class:`FeatureStage`: ``user-events`` -> ``features``. Validates each event, drops a repeated
  event id, computes the shared feature definitions with :class:`helpers.features.stream.FeatureEngineer`
  (the same code the skew check compares with Spark) and stamps when it received and computed them.
- :class:`ModelStage`: ``features`` -> ``predictions``. Drops an event id it already scored, scores
  the rest of the batch in one ``predict_proba`` call with the model the :class:`ChampionWatcher`
  holds *for this batch*, and writes the model's name and version on each prediction.

Anything that cannot be handled goes to the dead-letter topic unchanged, with ``reason``/``detail``
headers and its origin (as in Lab 03: :func:`helpers.streaming.stream.dlq_headers`).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import orjson

from helpers.features.definitions import FEATURE_NAMES
from helpers.features.stream import FeatureEngineer
from helpers.serving.loop import LoopStats, Out, SeenIds
from helpers.serving.scoring import BatchScorer
from helpers.serving.transport import Message
from helpers.streaming.stream import dlq_headers

REQUIRED = {"event_id": int, "user_id": int, "event_type": str}
SENDER_STAMPS = ("sent_at", "produced_at")
"""The sender's times an event may carry (intended, actual send: :mod:`helpers.serving.load`), passed on."""


class Rejected(ValueError):
    """One message that goes to the dead-letter topic, with a machine-readable ``reason``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def dead_letter(dlq: str, msg: Message, err: Rejected, stats: LoopStats) -> Out:
    """The DLQ copy of ``msg``: its bytes unchanged, the reason and the origin in its headers."""
    stats.reasons[err.reason] += 1
    return dlq, msg.key, msg.value, dlq_headers(err.reason, err.detail, msg.topic, msg.partition, msg.offset)


def event_seconds(value: Any) -> int:
    """Whole UTC epoch seconds of an ISO-8601 string (``Z`` or an offset; naive means UTC) or a number."""
    if isinstance(value, bool):
        raise Rejected("bad_value", f"event_time should be a timestamp, got {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    if not isinstance(value, str):
        raise Rejected("bad_value", f"event_time should be an ISO-8601 string, got {type(value).__name__}")
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected("bad_value", f"event_time {value[:40]!r} is not ISO-8601 (e.g. 2026-01-01T12:00:00Z)") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return int(stamp.timestamp())


def parse_event(raw: bytes) -> dict[str, Any]:
    """Decode and check one event; raise :class:`Rejected` saying what is wrong."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise Rejected("bad_json", f"not JSON: {err}") from None
    if not isinstance(event, dict):
        raise Rejected("bad_json", f"expected a JSON object, got {type(event).__name__}")
    missing = [k for k in (*REQUIRED, "event_time") if event.get(k) is None]
    if missing:
        raise Rejected("missing_field", f"missing {missing}")
    for name, kind in REQUIRED.items():
        if not isinstance(event[name], kind) or isinstance(event[name], bool):
            raise Rejected("bad_value", f"{name} should be {kind.__name__}, got {event[name]!r:.40}")
    event["_t"] = event_seconds(event["event_time"])
    return event


class FeatureStage:
    """``user-events`` -> ``features``: validate, dedupe by event id, compute the point-in-time features.

    Events of a user must come in time order (the topic is keyed by user): an event older than the
    user's latest one is ``late`` and dead-lettered, since its features could no longer match Spark's.
    """

    def __init__(self, out_topic: str, dlq_topic: str, seen: SeenIds | None = None) -> None:
        self.out_topic, self.dlq_topic = out_topic, dlq_topic
        self.engineer = FeatureEngineer()
        self.seen = seen or SeenIds()
        self.latest: dict[int, int] = {}

    def __call__(self, batch: list[Message], stats: LoopStats) -> list[Out]:
        outputs = []
        for msg in batch:
            received_at = time.time()
            try:
                event = parse_event(msg.value)
                user, t = event["user_id"], event["_t"]
                if event["event_id"] in self.seen:
                    stats.duplicates += 1
                    continue
                if t < self.latest.get(user, t):
                    raise Rejected("late", f"event_time {event['event_time']} is older than user {user}'s "
                                           f"latest event: its window features can no longer be computed")
            except Rejected as err:
                outputs.append(dead_letter(self.dlq_topic, msg, err, stats))
                continue
            self.seen.add(event["event_id"])
            self.latest[user] = t
            features = self.engineer.update({**event, "event_time": t})
            record = {"event_id": event["event_id"], "user_id": user, "event_time": event["event_time"],
                      "features": features, "received_at": received_at, "features_at": time.time()}
            record.update((k, event[k]) for k in SENDER_STAMPS if k in event)
            outputs.append((self.out_topic, str(user).encode(), orjson.dumps(record), None))
        return outputs


    def restore(self, bootstrap: str, topic: str, group_id: str, timeout_s: float = 60.0) -> int:
        """Rebuild the windows from ``topic`` up to ``group_id``'s committed offsets; return the events replayed.

        A restarted stage would otherwise compute the next events' features from empty windows (skew
        against Spark). The replay goes through the same validation, dedupe and engineer, emitting
        nothing; the consumer then resumes at the committed offsets.
        """
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False,
                             "enable.partition.eof": True, "log_level": 2})
        replayed = 0
        try:
            meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
            if meta is None or meta.error is not None:
                raise LookupError(f"topic {topic!r} does not exist: create the pipeline's topics first")
            committed = _committed(consumer, [TopicPartition(topic, p) for p in meta.partitions], timeout_s)
            ends = {tp.partition: tp.offset for tp in committed if tp.offset > 0}
            if not ends:
                return 0
            consumer.assign([TopicPartition(topic, p, 0) for p in ends])
            batches: dict[int, list[Message]] = {p: [] for p in ends}
            deadline = time.monotonic() + timeout_s
            while any(batches[p] is not None for p in ends) and time.monotonic() < deadline:
                for m in consumer.consume(1000, 0.5):
                    p = m.partition()
                    if batches.get(p) is None:
                        continue
                    if not m.error() and m.offset() < ends[p]:
                        batches[p].append(Message(topic, p, m.offset(), m.key(), m.value(), []))
                    if m.error() or m.offset() + 1 >= ends[p]:
                        self._replay(batches[p])
                        replayed += len(batches[p])
                        batches[p] = None  # type: ignore[assignment]
        finally:
            consumer.close()
        return replayed

    def _replay(self, messages: list[Message]) -> None:
        """Feed ``messages`` (one partition, in order) to the windows without emitting anything.

        Deduped among themselves as they were the first time, not against the ids already emitted
        (those are exactly the events whose windows must be rebuilt).
        """
        emitted, self.seen = self.seen, SeenIds()
        try:
            self(messages, LoopStats())
        finally:
            replayed, self.seen = self.seen, emitted
            for event_id in replayed:
                emitted.add(event_id)


def _committed(consumer: Any, partitions: list, timeout_s: float) -> list:
    """``consumer.committed(partitions)``, retried while the group coordinator is not ready yet.

    On a freshly started broker the offsets topic is still being created or loaded: the first
    lookups answer NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS (retriable) for a few seconds.
    """
    from confluent_kafka import KafkaError, KafkaException

    not_ready = {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                 KafkaError.COORDINATOR_NOT_AVAILABLE}
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return consumer.committed(partitions, timeout=max(1.0, deadline - time.monotonic()))
        except KafkaException as err:
            code = err.args[0].code() if err.args and isinstance(err.args[0], KafkaError) else None
            if code not in not_ready or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class ModelStage:
    """``features`` -> ``predictions``: dedupe by event id, score the batch in one call, stamp the version.

    Args:
        watcher: holds the serving model (:class:`helpers.serving.champion.ChampionWatcher`); the
            model is taken once per batch, so a batch is scored by exactly one version.
    """

    def __init__(self, watcher: Any, out_topic: str, dlq_topic: str, seen: SeenIds | None = None) -> None:
        self.watcher, self.out_topic, self.dlq_topic = watcher, out_topic, dlq_topic
        self.seen = seen or SeenIds()
        self.on_scored: Any = None  # a hook for metrics: on_scored(n_events, seconds)
        self.scorer = BatchScorer(FEATURE_NAMES)

    def __call__(self, batch: list[Message], stats: LoopStats) -> list[Out]:
        outputs, records, in_batch = [], [], set()
        for msg in batch:
            try:
                record = orjson.loads(msg.value)
                row = [float(record["features"][name]) for name in FEATURE_NAMES]
                event_id = record["event_id"]
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                outputs.append(dead_letter(self.dlq_topic, msg, Rejected(
                    "bad_features", f"expected a features record with {len(FEATURE_NAMES)} features: "
                                    f"{type(err).__name__}: {err}"), stats))
                continue
            if event_id in self.seen or event_id in in_batch:
                stats.duplicates += 1
                continue
            in_batch.add(event_id)
            records.append((msg, record, row))
        if not records:
            return outputs
        served = self.watcher.current()  # one model for the whole batch
        t0 = time.perf_counter()
        scores = self.scorer.score(served.model, [r[2] for r in records])  # one call, exactly predict_proba
        if self.on_scored is not None:
            self.on_scored(len(records), time.perf_counter() - t0)
        scored_at = time.time()
        for event_id in in_batch:  # remembered once scored (a failure above leaves them to the retry)
            self.seen.add(event_id)
        for (msg, record, _), score in zip(records, scores):
            prediction = {"event_id": record["event_id"], "user_id": record["user_id"],
                          "event_time": record.get("event_time"), "model_name": served.name,
                          "model_version": served.version, "score": round(float(score), 6),
                          "received_at": record.get("received_at"), "features_at": record.get("features_at"),
                          "scored_at": scored_at}
            prediction.update((k, record[k]) for k in SENDER_STAMPS if k in record)
            outputs.append((self.out_topic, msg.key, orjson.dumps(prediction), None))
        return outputs


class FusedStage:
    """Both stages in one process: features and predictions from the same batch, one flush, one commit.

    The ``features`` topic is still written (for audit and the skew check), but a prediction does not
    wait for the features' round trip through Kafka: one consume and one produce per event instead of
    two of each, half the hops of the two-process pipeline.
    """

    def __init__(self, features: FeatureStage, model: ModelStage) -> None:
        self.features, self.model = features, model

    def __call__(self, batch: list[Message], stats: LoopStats) -> list[Out]:
        outputs = self.features(batch, stats)
        computed = [Message(topic, -1, -1, key, value, []) for topic, key, value, _ in outputs
                    if topic == self.features.out_topic]
        return outputs + self.model(computed, stats)


def seen_in_topic(bootstrap: str, topic: str, lookback: int = 20_000, timeout_s: float = 10.0) -> SeenIds:
    """Event ids in the last ``lookback`` messages of each partition of ``topic`` (an output topic).

    A restarted stage reads them first, so the batch a crash left uncommitted is not emitted twice:
    what it had already produced is recognised. ``lookback`` must exceed what one crash can leave
    uncommitted (a few batches per partition).
    """
    from confluent_kafka import Consumer, TopicPartition

    seen = SeenIds()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "serving-dedupe-scan",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            raise LookupError(f"topic {topic!r} does not exist: create the pipeline's topics first")
        parts, ends = [], 0
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            if high > low:
                parts.append(TopicPartition(topic, p, max(low, high - lookback)))
                ends += 1
        consumer.assign(parts)
        deadline = time.monotonic() + timeout_s + 0.01 * lookback
        while ends and time.monotonic() < deadline:
            for m in consumer.consume(1000, 0.5):
                if m.error():
                    ends -= 1  # partition EOF
                    continue
                try:
                    seen.add(orjson.loads(m.value())["event_id"])
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue
    finally:
        consumer.close()
    return seen
