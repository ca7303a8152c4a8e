"""The capstone's ``streaming`` part: the serving pipeline scores a fixed-rate event stream with the champion.

The two stages run as processes (``python -m helpers.serving features|model``, on this run's own topics)
and serve the champion of the model the training part registered (its section's ``model.name``; else
``--model``; else the training settings' ``model_name``). The event source sends generated events at a
fixed rate (default 1,000/s for 10 s; ``--stream-seconds 60`` for the bench's length), 1 % of them
malformed, each stamped with its *intended* send time; latency runs from that time to the prediction read
downstream (no coordinated omission), driven by :mod:`helpers.serving.load` as in ``make bench``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from helpers.capstone.summary import Part, register_part

MALFORMED_FRACTION = 0.01
WARM_UP = 200
"""Events sent first at 200/s (the stages join their groups, the caches warm up); not measured."""


def stream_events(n: int, malformed_fraction: float = MALFORMED_FRACTION) -> tuple[list[dict], set[int]]:
    """``n`` generated events (a share of them malformed), in time order; and the ids of those the pipeline accepts."""
    from helpers.data.ecommerce import generate_ecommerce
    from helpers.data.malformed import event_records

    raw = generate_ecommerce(n, 11, "2026-03-01", max(1, n // 20_000), progress=False).events
    records = event_records(raw.sort_values(["event_time", "event_id"], kind="stable").head(n),
                            malformed_fraction=malformed_fraction, seed=11)
    return records, {r["event_id"] for r in records if accepted(r)}


def accepted(record: dict) -> bool:
    """Whether the serving contract (:func:`helpers.serving.stages.parse_event`) accepts ``record``.

    A text ``price`` passes (the features do not read it); a missing user, type or time does not.
    """
    import orjson

    from helpers.serving.stages import Rejected, parse_event

    try:
        parse_event(orjson.dumps(record))
    except Rejected:
        return False
    return True


def topic_size(bootstrap: str, topic: str) -> int:
    """Messages in ``topic`` (the sum of its partitions' high watermarks: the topic is this run's own)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"size-{uuid.uuid4().hex[:6]}"})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts)
    finally:
        consumer.close()


def model_name(options: Mapping[str, Any]) -> str:
    """The training part's model, else ``options['model']``, else the training settings' ``model_name``."""
    from helpers.pipeline.steps import DEFAULTS

    trained = (options.get("sections") or {}).get("training") or {}
    return (trained.get("model") or {}).get("name") or options.get("model") or DEFAULTS["model_name"]


def latency_figures(got: list[tuple[float, dict]]) -> dict[str, float]:
    """p50 / p99 / max in ms from each prediction's intended send time (``sent_at``) to its reading."""
    import numpy as np

    total = np.array([at - p["sent_at"] for at, p in got]) * 1000
    return {"p50": round(float(np.percentile(total, 50)), 2), "p99": round(float(np.percentile(total, 99)), 2),
            "max": round(float(total.max()), 2)}


def run_streaming(options: Mapping[str, Any]) -> dict[str, Any]:
    """Serve the champion at a fixed rate through both stages; the section.

    Options: ``stream_rate`` (events/s, default 1,000), ``stream_seconds`` (default 10), ``model``,
    ``stream_timeout_s`` (default 90: the bound on waiting for the last predictions, never a measure of speed).
    """
    from helpers.platform.config import capstone_dir
    from helpers.platform.kafka_broker import start_broker
    from helpers.registry.models import champion_version
    from helpers.serving.load import ServingLoad, run_at_rate
    from helpers.serving.processes import StageProcess
    from helpers.serving.topics import ensure_topics

    rate, seconds = float(options.get("stream_rate") or 1000), float(options.get("stream_seconds") or 10)
    timeout = float(options.get("stream_timeout_s") or 90)
    name = model_name(options)
    champion = champion_version(name)
    if champion is None:
        return {"ok": False, "model": {"name": name}, "error": f"model {name!r} has no champion to serve: run the "
                "training part first (--parts training,streaming) or name a registered model with --model"}
    bootstrap = start_broker()  # the running broker is reused (an external one: KAFKA_BOOTSTRAP_SERVERS)
    tag = uuid.uuid4().hex[:6]
    topics = ensure_topics({r: f"capstone-{r}-{tag}" for r in ("events", "features", "predictions", "dlq")},
                           bootstrap=bootstrap, partitions=6)
    logs = capstone_dir() / "streaming" / tag
    stages = [StageProcess("features", logs / "features.log", group=f"f-{tag}", source=topics["events"],
                           out=topics["features"], dlq=topics["dlq"], bootstrap=bootstrap),
              StageProcess("model", logs / "model.log", group=f"m-{tag}", model=name, source=topics["features"],
                           out=topics["predictions"], dlq=topics["dlq"], bootstrap=bootstrap)]
    n = int(rate * seconds)
    events, valid = stream_events(WARM_UP + n)
    warm, timed = events[:WARM_UP], events[WARM_UP:]
    timed_valid = [e["event_id"] for e in timed if e["event_id"] in valid]
    with ServingLoad(stages, bootstrap, topics["events"], topics["predictions"]) as load:
        run = run_at_rate(load, warm, timed, rate, warm_ids=[e["event_id"] for e in warm if e["event_id"] in valid],
                          timed_ids=timed_valid, timeout_s=timeout)
    got, send_s = run.got, run.send_seconds
    dlq = topic_size(bootstrap, topics["dlq"])
    versions = sorted({str(p["model_version"]) for _, p in got})
    section: dict[str, Any] = {
        "ok": False, "rate": rate, "stream_seconds": seconds, "topics": topics, "logs": str(logs),
        "events_sent": len(timed), "warm_up_events": len(warm), "valid_events_sent": len(timed_valid),
        "predictions": len(got), "dlq": dlq, "dlq_expected": len(events) - len(valid),
        "model": {"name": name, "champion": champion, "served_versions": versions},
        "send_seconds": round(send_s, 2),
    }
    if got:
        span = max(at for at, _ in got) - min(p["sent_at"] for _, p in got)
        section["latency_ms"] = latency_figures(got)
        section["throughput_per_s"] = round(len(got) / span, 1) if span > 0 else None
    missing = len(timed_valid) - len(got)
    if missing:
        section["error"] = (f"{missing:,} of {len(timed_valid):,} valid events got no prediction within "
                            f"{timeout:.0f} s: see the stages' logs in {logs}")
    elif versions != [champion]:
        section["error"] = f"expected every prediction from the champion v{champion}, got versions {versions}"
    else:
        section["ok"] = True
    return section


def report_streaming(section: Mapping[str, Any]) -> list[str]:
    """A few lines: what was sent and scored, by which model, and the latency."""
    lat, model = section.get("latency_ms") or {}, section["model"]
    lines = [f"{section['events_sent']:,} events at {section['rate']:,.0f}/s for {section['stream_seconds']:.0f} s "
             f"(sent in {section['send_seconds']:.1f} s): {section['predictions']:,} predictions for "
             f"{section['valid_events_sent']:,} valid events; {section['dlq']:,} dead-lettered "
             f"(of {section['dlq_expected']:,} malformed, warm-up included)",
             f"model {model['name']} v{model['champion']} (champion) served; versions seen {model['served_versions']}"]
    if lat:
        lines.append(f"latency from the intended send time: p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
                     f"max {lat['max']:.1f} ms; throughput {section['throughput_per_s']:,.0f} predictions/s")
    return lines


PART = register_part(Part("streaming", run_streaming, report_streaming))
