"""Lab 05's streaming inference on the live broker and a real MLflow registry (SQLite, the suite's state).

The two stages run as processes (``python -m helpers.serving``): events go in at a fixed rate while the
``champion`` alias moves to a new version and the model server is SIGKILLed and restarted. Downstream,
every valid event has exactly one prediction, the version switch shows, poison is dead-lettered with
its reason, and the features the stream computed equal the reference implementation's.
"""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from helpers.data.ecommerce import generate_ecommerce
from helpers.data.malformed import event_records
from helpers.features.definitions import FEATURE_NAMES, LABEL
from helpers.features.stream import compute_features, label_next_hour


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    """A day of seeded events, in time order (the order a producer would send them)."""
    raw = generate_ecommerce(3_000, 5, "2026-01-01", 1, progress=False).events
    return raw.sort_values(["event_time", "event_id"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def registered(events) -> dict[str, str]:
    """A registered model with two versions (hour-only logistic regression, then gradient boosting); v1 is champion."""
    from mlflow import MlflowClient
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from helpers.registry.models import CHAMPION, log_and_register

    frame = compute_features(events)
    frame[LABEL] = label_next_hour(events).to_numpy()
    x, y = frame[list(FEATURE_NAMES)].astype(float), frame[LABEL]
    with threadpool_limits(1):
        weak = LogisticRegression().fit(x.assign(**{c: 0.0 for c in x.columns if c != "hour"}), y)
        strong = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y)
    name = f"serving-{uuid.uuid4().hex[:8]}"
    v1 = log_and_register(weak, name, x).version
    v2 = log_and_register(strong, name, x).version
    MlflowClient().set_registered_model_alias(name, CHAMPION, v1)
    return {"name": name, "v1": v1, "v2": v2}


def _read_all(bootstrap: str, topic: str, until: int = 0, timeout_s: float = 60.0) -> list[dict]:
    """Every message of ``topic`` (values decoded, headers as a dict), waiting until ``until`` arrived."""
    import orjson
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    out: list[dict] = []
    deadline, quiet_since = time.monotonic() + timeout_s, time.monotonic()
    try:
        while time.monotonic() < deadline and (len(out) < until or time.monotonic() - quiet_since < 2.0):
            batch = [m for m in consumer.consume(1000, 0.3) if not m.error()]
            if batch:
                quiet_since = time.monotonic()
            for m in batch:
                try:
                    value = orjson.loads(m.value())
                except orjson.JSONDecodeError:
                    value = m.value()
                out.append({"value": value, "headers": {k: v.decode() for k, v in m.headers() or []}})
    finally:
        consumer.close()
    return out


@pytest.mark.parametrize("mode", ["two processes", "one process"])
def test_alias_switch_and_a_killed_server_give_exactly_one_prediction_per_valid_event(
        kafka_broker, events, registered, test_state, mode):
    """Check that the version switch shows, a SIGKILLed server loses and doubles nothing, and poison is dead-lettered.

    Two processes: the model server is killed; one process (``both``): the whole server is killed, so
    its feature windows must be rebuilt from the topic on restart or the features would be skewed.
    """
    import orjson
    from mlflow import MlflowClient

    from helpers.registry.models import CHAMPION
    from helpers.serving.processes import StageProcess
    from helpers.serving.topics import ensure_topics
    from helpers.streaming.scenario import produce_at_rate

    tag = uuid.uuid4().hex[:8]
    topics = ensure_topics({role: f"{role}-{tag}" for role in ("events", "features", "predictions", "dlq")},
                           partitions=3)
    logs = test_state / "serving" / tag
    common = {"dlq": topics["dlq"], "max_records": 200, "model": registered["name"], "reload_s": 0.3}
    MlflowClient().set_registered_model_alias(registered["name"], CHAMPION, registered["v1"])
    if mode == "two processes":
        features = StageProcess("features", logs / "features.log", group=f"features-{tag}", source=topics["events"],
                                out=topics["features"], name="features-1", dlq=topics["dlq"], max_records=200).start()
        server = StageProcess("model", logs / "model.log", group=f"model-{tag}", source=topics["features"],
                              out=topics["predictions"], name="model-1", **common)
    else:
        features = None
        server = StageProcess("both", logs / "both.log", group=f"both-{tag}", source=topics["events"],
                              features_topic=topics["features"], out=topics["predictions"], name="both-1", **common)
    server.start()
    records = event_records(events)
    first_user = records[0]["user_id"]
    bad = [{"event_id": 10**9 + 1, "user_id": first_user, "event_type": "view"},   # missing event_time
           {"event_id": 10**9 + 2, "user_id": "u-1", "event_type": "view", "event_time": "2026-01-01T00:00:00Z"},
           {**records[0], "event_id": 10**9 + 3, "event_time": "2025-12-31T00:00:00Z"}]  # late
    stream = records[:1000] + [records[10], records[20]] + bad + records[1000:]  # two repeats, three poison
    try:
        for stage in filter(None, (features, server)):
            stage.wait_ready()
        sender = threading.Thread(target=produce_at_rate, args=(topics["events"], stream, 400.0),
                                  kwargs={"stamp_field": "sent_at"}, daemon=True)
        sender.start()
        time.sleep(1.5)
        MlflowClient().set_registered_model_alias(registered["name"], CHAMPION, registered["v2"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the new version has scored a batch
            got = _read_all(kafka_broker, topics["predictions"], timeout_s=0.5)
            if any(p["value"]["model_version"] == registered["v2"] for p in got):
                break
        server.kill()  # mid-stream: its last batches are produced but not committed
        killed_at = time.monotonic()
        server.start()
        server.wait_ready()
        sender.join(timeout=60)
        predictions = _read_all(kafka_broker, topics["predictions"], until=len(records), timeout_s=90)
        feature_records = _read_all(kafka_broker, topics["features"], until=len(records), timeout_s=30)
        dead = _read_all(kafka_broker, topics["dlq"], until=3, timeout_s=10)
    finally:
        for stage in filter(None, (server, features)):
            stage.stop()
    print(f"{mode}: killed at {killed_at:.0f}; server log:\n{server.log()[-1500:]}\n"
          f"features log:\n{features.log()[-600:] if features else '(same process)'}")

    ids = [p["value"]["event_id"] for p in predictions]
    expected = set(events.event_id)
    missing, doubled = expected - set(ids), len(ids) - len(set(ids))
    assert not missing and doubled == 0 and set(ids) == expected, (
        f"expected exactly one prediction per valid event ({len(expected)}), got {len(ids)} predictions: "
        f"{len(missing)} missing (e.g. {sorted(missing)[:5]}), {doubled} doubled; the server must commit only "
        f"after its outputs are acknowledged and skip event ids it already scored (read back at start); "
        f"dead-lettered: {[(d['headers'].get('reason'), d['headers'].get('detail')) for d in dead][:5]}")
    by_version = pd.Series([p["value"]["model_version"] for p in predictions]).value_counts().to_dict()
    assert set(by_version) == {registered["v1"], registered["v2"]}, (
        f"expected predictions from both versions {registered['v1']} and {registered['v2']} (the alias moved "
        f"mid-stream, no restart), got {by_version}; the watcher must reload the champion")
    stamps = {v: [p["value"]["scored_at"] for p in predictions if p["value"]["model_version"] == v] for v in by_version}
    assert max(stamps[registered["v1"]]) <= min(stamps[registered["v2"]]), (
        "once the new champion served a batch, the old version must not score again")
    first = predictions[0]["value"]
    for field in ("event_id", "user_id", "model_name", "model_version", "score", "features_at", "received_at",
                  "scored_at", "sent_at"):
        assert first.get(field) is not None, f"a prediction should carry {field}, got {first}"
    assert first["model_name"] == registered["name"] and 0.0 <= first["score"] <= 1.0, f"got {first}"
    reasons = sorted(d["headers"].get("reason") for d in dead)
    assert reasons == ["bad_value", "late", "missing_field"], (
        f"expected the three poison events in the DLQ with reasons bad_value, late, missing_field, got {reasons}")

    stream_features = pd.DataFrame([{"event_id": r["value"]["event_id"], **r["value"]["features"]}
                                    for r in feature_records]).drop_duplicates("event_id")
    reference = compute_features(events)  # equal to Spark's per event: tests/test_features.py
    from helpers.serving.skew import compare_features

    skew = compare_features(stream_features, reference)
    assert not skew, f"the features the stream computed should equal the reference per event, got {skew}"
    skewed = reference.assign(spend_24h=reference.spend_24h * 1.1)
    assert set(compare_features(stream_features, skewed)) == {"spend_24h"}, (
        "a deliberately skewed feature (spend in another currency) should be caught by the skew check")
    assert orjson.loads(orjson.dumps(first)) == first


def test_registry_down_is_a_clear_error_and_a_bad_version_keeps_the_champion(registered, free_port, events):
    """Check that an unreachable registry fails fast, and that a version that cannot serve keeps the old one with an alert."""
    from mlflow import MlflowClient
    from sklearn.linear_model import LinearRegression

    from helpers.alerts.sink import last_alert_id, read_alerts
    from helpers.registry.models import CHAMPION, log_and_register
    from helpers.registry.tracking import RegistryUnavailable
    from helpers.serving.champion import ChampionWatcher

    with pytest.raises(RegistryUnavailable, match="did not answer within 2 s"):
        ChampionWatcher(registered["name"], tracking_uri=f"http://127.0.0.1:{free_port}", wait_s=2)
    with pytest.raises(LookupError, match="no 'champion' alias"):
        ChampionWatcher(f"nothing-{uuid.uuid4().hex[:6]}")

    client = MlflowClient()
    client.set_registered_model_alias(registered["name"], CHAMPION, registered["v1"])
    watcher = ChampionWatcher(registered["name"])
    x = compute_features(events.head(200))[list(FEATURE_NAMES)].astype(float)
    broken = log_and_register(LinearRegression().fit(x, np.arange(len(x))), registered["name"], x).version
    before = last_alert_id()
    client.set_registered_model_alias(registered["name"], CHAMPION, broken)
    assert not watcher.check() and watcher.current().version == registered["v1"], (
        f"a champion without predict_proba must not replace version {registered['v1']}, serving "
        f"{watcher.current().version}")
    alerts = read_alerts(f"serving.{registered['name']}", since_id=before)
    assert len(alerts) == 1 and f"version {broken}" in alerts[0].message and "still serving" in alerts[0].message, (
        f"expected one alert naming version {broken} and the version still serving, got {[a.message for a in alerts]}")
    assert not watcher.check() and len(read_alerts(f"serving.{registered['name']}", since_id=before)) == 1, (
        "the same broken version should alert once, not at every check")
    client.set_registered_model_alias(registered["name"], CHAMPION, registered["v2"])
    assert watcher.check() and watcher.current().version == registered["v2"], "a good new champion should swap in"


def test_incremental_feature_windows_equal_the_exact_recomputation_even_out_of_order(events):
    """Check that the sliding-window engineer gives the exact path's values, and falls back to it out of order."""
    from helpers.features.definitions import FEATURES, WindowFeature
    from helpers.features.stream import FeatureEngineer

    extra = (WindowFeature("recency_cart_s", "recency", 3600, "add_to_cart"),
             WindowFeature("n_purchase_categories_24h", "distinct", 86400, "purchase", "category"))
    rows = events.to_dict("records")
    rows.insert(300, {**rows[100], "event_id": -1})  # the same user again, 200 events late
    fast, exact = FeatureEngineer((*FEATURES, *extra)), FeatureEngineer((*FEATURES, *extra))
    exact._out_of_order = type("Everyone", (set,), {"__contains__": lambda self, user: True})()
    for i, event in enumerate(rows):
        got, want = fast.update(event), exact.update(event)
        assert got == want, (f"event {i} (id {event['event_id']}): the incremental windows gave {got}, the exact "
                             f"recomputation {want}; both must read [t - w, t) of the user's earlier events")


def test_committed_offsets_lookup_waits_for_a_loading_coordinator_and_raises_anything_else():
    """Check that a fresh broker's NOT_COORDINATOR is retried (the stage used to exit), other errors are not."""
    from confluent_kafka import KafkaError, KafkaException

    from helpers.serving.stages import _committed

    class Consumer:
        def __init__(self, errors):
            self.errors, self.calls = list(errors), 0

        def committed(self, partitions, timeout):
            self.calls += 1
            if self.errors:
                raise KafkaException(KafkaError(self.errors.pop(0)))
            return partitions

    loading = Consumer([KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS])
    assert _committed(loading, ["p0"], timeout_s=10) == ["p0"] and loading.calls == 3, (
        f"expected two retries then the offsets, got {loading.calls} calls")
    denied = Consumer([KafkaError.GROUP_AUTHORIZATION_FAILED])
    with pytest.raises(KafkaException):
        _committed(denied, ["p0"], timeout_s=10)
    assert denied.calls == 1, "an error that waiting cannot fix must be raised at once"
