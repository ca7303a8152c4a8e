"""``python -m helpers.serving features|model [options]``: one stage of the pipeline, as one process.

A SIGTERM stops it cleanly (last commit made); a SIGKILL loses nothing either: the uncommitted batch
is read again on restart and what was already emitted is recognised by event id.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading

from helpers.serving.topics import TOPICS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers.serving", description=__doc__)
    parser.add_argument("stage", choices=("features", "model", "both"),
                        help="features: user-events -> features; model: features -> predictions; both: one process")
    parser.add_argument("--group", help="consumer group (default: serving-<stage>)")
    parser.add_argument("--source", "--in", dest="source", help="input topic (default: user-events / features)")
    parser.add_argument("--out", help="output topic (default: features / predictions)")
    parser.add_argument("--features-topic", default=TOPICS["features"], help="(both) where the features go")
    parser.add_argument("--dlq", default=TOPICS["dlq"])
    parser.add_argument("--model", help="registered model name (model stage)")
    parser.add_argument("--client", default="confluent", choices=("confluent", "kafka-python"))
    parser.add_argument("--name", default=f"serving-{os.getpid()}", help="client id in the group")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the configured ones)")
    parser.add_argument("--reload-s", type=float, default=2.0, help="how often the champion alias is checked")
    parser.add_argument("--max-records", type=int, default=500)
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--lookback", type=int, default=20_000, help="output records per partition read at start for dedupe")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve /metrics on 127.0.0.1:PORT (0: a free one)")
    parser.add_argument("--no-metrics", action="store_true", help="no /metrics endpoint, no Prometheus target")
    return parser


ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Set to 1 before numpy/scikit-learn load. Measured on the shared 2-core machine: one
``predict_proba`` of a 60-tree gradient-boosting model on 10 rows takes 90-110 ms with OpenMP's
default thread pool (its threads spin, competing with Kafka's and the other stage's) and 1-4 ms on
one thread. A stage is one process per core: scale by adding processes to the group, not threads."""


class GcPauses:
    """The garbage collector's pauses in this process (``gc.callbacks``): count, total and longest."""

    def __init__(self) -> None:
        import time

        self.count, self.total_s, self.longest_s, self._t0 = 0, 0.0, 0.0, 0.0
        self._clock = time.perf_counter  # bound now: the callback must not import (it may run at shutdown)

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = self._clock()
        else:
            pause = self._clock() - self._t0
            self.count, self.total_s, self.longest_s = self.count + 1, self.total_s + pause, max(self.longest_s, pause)

    def __str__(self) -> str:
        return f"gc pauses {self.count:,}, {self.total_s * 1000:,.0f} ms in all, longest {self.longest_s * 1000:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    for name in ONE_THREAD:
        os.environ.setdefault(name, "1")
    from helpers.kafka.clients import BrokerUnavailable, is_reachable
    from helpers.platform.config import kafka_bootstrap_servers
    from helpers.registry.tracking import RegistryUnavailable
    from helpers.serving.loop import serve
    from helpers.serving.stages import (
        FeatureStage,
        FusedStage,
        ModelStage,
        seen_in_topic,
    )
    from helpers.serving.transport import open_transport

    args = build_parser().parse_args(argv)
    bootstrap = args.bootstrap or kafka_bootstrap_servers()
    features = args.stage == "features"
    source = args.source or (TOPICS["features"] if args.stage == "model" else TOPICS["events"])
    out = args.out or (TOPICS["features"] if features else TOPICS["predictions"])
    if not is_reachable(bootstrap):
        raise BrokerUnavailable(f"no Kafka broker answers at {bootstrap}: start it (make services) or set "
                                f"KAFKA_BOOTSTRAP_SERVERS")
    watcher, replayed = None, 0
    group = args.group or f"serving-{args.stage}"
    if features:
        handler = FeatureStage(out, args.dlq, seen_in_topic(bootstrap, out, args.lookback))
        replayed = handler.restore(bootstrap, source, group)
    else:
        if not args.model:
            print("the model stage needs --model NAME (a registered model with a champion alias)", file=sys.stderr)
            return 2
        try:
            from helpers.serving.champion import ChampionWatcher

            watcher = ChampionWatcher(args.model, reload_s=args.reload_s).start()
        except (RegistryUnavailable, LookupError) as err:
            print(f"cannot serve: {err}", file=sys.stderr, flush=True)
            return 3
        handler = ModelStage(watcher, out, args.dlq, seen_in_topic(bootstrap, out, args.lookback))
        if args.stage == "both":  # recovery dedupes on the predictions: a crash between the features and
            # the predictions of an event must not make the restart skip it, so features may repeat
            feature_stage = FeatureStage(args.features_topic, args.dlq)
            replayed = feature_stage.restore(bootstrap, source, group)
            handler = FusedStage(feature_stage, handler)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    metrics = None
    if not args.no_metrics:  # Prometheus metrics (helpers.serving.metered): the handler measured, a lag thread
        from helpers.serving.metered import StageMetrics, component_name

        metrics = StageMetrics(args.stage, component_name(args.stage, args.name), out, args.dlq, group, bootstrap,
                               watcher).start(args.metrics_port)
        handler = metrics.wrap(handler)
    transport = open_transport(args.client, bootstrap, group, [source], client_id=args.name)
    served = f" model {watcher.current().name} v{watcher.current().version}" if watcher else ""
    restored = f", windows restored from {replayed:,} events" if replayed else ""
    scraped = f", metrics on port {metrics.port} as {metrics.component}" if metrics else ""
    print(f"{args.name}: {args.stage} stage ready ({args.client}, {source} -> {out}){served}{restored}{scraped}",
          flush=True)
    on_batch = (lambda _stats: metrics.on_batch(transport.assignment())) if metrics else None
    gc.freeze()  # what start-up built (model, windows, ids read back) is never scanned again: shorter pauses
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        stats = serve(transport, handler, max_records=args.max_records, max_seconds=args.max_seconds, stop=stop,
                      on_batch=on_batch)
    finally:
        gc.callbacks.remove(pauses)
        if watcher is not None:
            watcher.stop()
        if metrics is not None:
            metrics.close()
    swaps = f", model swaps {watcher.swaps}" if watcher else ""
    print(f"{args.name}: {stats}{swaps}; {pauses}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
