"""The serving loop on the live broker: batches in flight, committed in order once acknowledged, lag 0 when idle.

:func:`helpers.serving.loop.serve` no longer waits for a batch's acknowledgements before it reads the
next one; it retires batches in order as their outputs are acknowledged and commits at most every
200 ms, and also when the input goes quiet (before that fix the group's lag stayed above 0 after the
last batch until the next one arrived: a lag alert or a scale-out chart waited for nothing).
"""

from __future__ import annotations

import threading
import time

from helpers.kafka.admin import consumer_lag, ensure_topic
from helpers.kafka.clients import read_topic, unique_topic
from helpers.serving.loop import LoopStats, serve
from helpers.serving.transport import Message, open_transport


def _echo(out_topic: str):
    def handle(batch: list[Message], stats: LoopStats):
        return [(out_topic, m.key, m.value, None) for m in batch]

    return handle


def test_every_batch_is_emitted_once_and_an_idle_member_commits_up_to_its_last_batch(kafka_broker):
    """Check exactly one output per input, and lag 0 while the member still runs (idle commit)."""
    from confluent_kafka import Producer

    source, sink, group = unique_topic("loop-in"), unique_topic("loop-out"), unique_topic("loop-group")
    ensure_topic(source, 3)
    ensure_topic(sink, 3)
    stop = threading.Event()
    result: dict[str, LoopStats] = {}
    transport = open_transport("confluent", kafka_broker, group, [source], client_id="loop-test")
    runner = threading.Thread(target=lambda: result.setdefault(
        "stats", serve(transport, _echo(sink), max_records=50, stop=stop)), daemon=True)
    runner.start()
    producer = Producer({"bootstrap.servers": kafka_broker, "acks": "all", "enable.idempotence": True})
    try:
        for burst in range(4):  # bursts with pauses: batches in flight, then quiet spells
            for i in range(100):
                producer.produce(source, key=str(i % 7).encode(), value=f"{burst}-{i}".encode())
            producer.flush(30)
            time.sleep(0.3)
        outputs = read_topic(sink, max_records=400, idle_timeout_s=10, decode_json=False)
        deadline = time.monotonic() + 20  # a bound on waiting, not a measure: commits come every 200 ms
        lag = consumer_lag(group, source)
        while sum(lag.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
            lag = consumer_lag(group, source)
        assert runner.is_alive(), f"the loop stopped by itself: {result.get('stats')}"
    finally:
        stop.set()
        runner.join(timeout=30)
    values = sorted(r.value for r in outputs)
    assert len(values) == 400 and len(set(values)) == 400, (
        f"expected each of the 400 inputs emitted exactly once, got {len(values)} outputs, {len(set(values))} distinct; "
        f"loop: {result.get('stats')}")
    assert sum(lag.values()) == 0, (
        f"expected the idle member to have committed up to its last batch (lag 0 per partition), got {lag}: the "
        f"loop must commit acknowledged offsets when the input goes quiet, not only after the next batch")
    stats = result["stats"]
    assert stats.consumed == stats.produced == 400 and stats.batches >= 4, (
        f"expected 400 consumed and produced in at least 4 retired batches, got {stats}")
