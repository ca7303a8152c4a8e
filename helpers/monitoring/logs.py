"""Structured logs in the Elastic Common Schema, shipped in bulk to OpenSearch, and searched by event id.

Every component logs through :func:`ecs_logger`: JSON lines formatted by ``ecs-logging`` (``@timestamp``,
``log.level``, ``message``, ``service.name``, and the ``event.id`` / ``trace.id`` you pass), written to a
stream and buffered for OpenSearch's ``_bulk`` API by :class:`OpenSearchHandler` (opensearch-py). Then
:func:`search_event` follows one event across every service::

    log = ecs_logger("model-server")
    log.info("scored", extra={"event.id": event_id, "trace.id": trace_id, "event.action": "predict"})
    flush_logs(log)                       # or let the handler flush every 200 records / 2 seconds
    search_event(event_id)                # [{"service": {"name": "ingest"}, ...}, {... "model-server" ...}]
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import threading
import time
from typing import IO, Any

import ecs_logging
from opensearchpy import OpenSearch, helpers

from helpers.platform.config import monitoring_url

LOGS_INDEX = "workbook-logs"


def client(url: str | None = None, retries: int = 2) -> OpenSearch:
    """Return an OpenSearch client for ``url`` (default: ``OPENSEARCH_URL`` or the embedded node)."""
    return OpenSearch(hosts=[url or monitoring_url("opensearch")], timeout=30, max_retries=retries,
                      retry_on_timeout=retries > 0)


_SEQUENCE = itertools.count(1)
"""This process's log line numbers: ``event.sequence`` orders lines logged within the same millisecond."""


class _ServiceName(logging.Filter):
    """Stamp ``service.name`` and ``event.sequence`` on every record (ecs-logging nests dotted extras).

    ``@timestamp`` has millisecond precision, so two lines of one process often share it; ECS's
    ``event.sequence`` keeps their order when they are sorted (:func:`search_event`).
    """

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        setattr(record, "service.name", self.service)
        if not hasattr(record, "event.sequence"):
            setattr(record, "event.sequence", next(_SEQUENCE))
        return True


class OpenSearchHandler(logging.Handler):
    """Buffer ECS documents and send them with the ``_bulk`` API every ``batch_size`` records or ``flush_s`` seconds.

    A failed send is reported on stderr and its records are kept for the next flush (at most
    ``max_buffer``; beyond that the oldest are dropped and counted in :attr:`dropped`), so logging can never
    crash the component it observes.
    """

    def __init__(self, index: str = LOGS_INDEX, url: str | None = None, batch_size: int = 200,
                 flush_s: float = 2.0, max_buffer: int = 50_000) -> None:
        super().__init__()
        self.setFormatter(ecs_logging.StdlibFormatter())
        self.index, self.batch_size, self.flush_s, self.max_buffer = index, batch_size, flush_s, max_buffer
        self._client = client(url, retries=0)  # a down log store must not stall the component for long
        self._buffer: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._send_lock = threading.Lock()
        self.sent = 0
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            document = json.loads(self.format(record))
        except Exception:  # a record that cannot be formatted: logging's own error report, never a crash
            self.handleError(record)
            return
        with self._send_lock:
            self._buffer.append(document)
            if len(self._buffer) > self.max_buffer:
                overflow = len(self._buffer) - self.max_buffer
                del self._buffer[:overflow]
                self.dropped += overflow
            due = len(self._buffer) >= self.batch_size or time.monotonic() - self._last_flush >= self.flush_s
        if due:
            self.flush()

    def flush(self) -> None:
        """Send the buffered documents now (``refresh`` so a search right after sees them)."""
        with self._send_lock:
            batch, self._buffer = self._buffer, []
            self._last_flush = time.monotonic()
            if not batch:
                return
            try:
                ok, _ = helpers.bulk(self._client, ({"_index": self.index, "_source": doc} for doc in batch),
                                     refresh="wait_for", raise_on_error=True)
                self.sent += ok
            except Exception as err:  # OpenSearch down or refusing: keep the records, say so, don't crash
                self._buffer[:0] = batch
                print(f"OpenSearchHandler: could not send {len(batch)} log records to {self.index} "
                      f"({type(err).__name__}: {str(err)[:200]}); kept for the next flush", file=sys.stderr)

    def close(self) -> None:
        self.flush()
        super().close()


def ecs_logger(service: str, *, stream: IO[str] | None = sys.stderr, ship: bool = True,
               index: str = LOGS_INDEX, url: str | None = None, level: int = logging.INFO) -> logging.Logger:
    """Return the logger ``workbook.<service>``: ECS JSON lines on ``stream`` and, if ``ship``, to OpenSearch.

    Calling it again for the same service returns the same logger without adding handlers twice.

    Args:
        service: the component's name (``service.name`` on every line).
        stream: where the JSON lines go (None: nowhere).
        ship: also send every record to OpenSearch (``index``, at ``url``).
    """
    logger = logging.getLogger(f"workbook.{service}")
    if getattr(logger, "_workbook_configured", False):
        return logger
    logger.setLevel(level)
    logger.propagate = False
    logger.addFilter(_ServiceName(service))
    if stream is not None:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(ecs_logging.StdlibFormatter())
        logger.addHandler(handler)
    if ship:
        logger.addHandler(OpenSearchHandler(index=index, url=url))
    logger._workbook_configured = True  # type: ignore[attr-defined]
    return logger


def flush_logs(logger: logging.Logger) -> None:
    """Send what ``logger``'s OpenSearch handler still buffers."""
    for handler in logger.handlers:
        handler.flush()


def search_event(event_id: str, index: str = LOGS_INDEX, url: str | None = None, size: int = 1000) -> list[dict[str, Any]]:
    """Return every log line with ``event.id == event_id``, oldest first: one event followed across services.

    Lines of one process within the same millisecond keep the order they were logged in (``event.sequence``).
    """
    if not event_id:
        raise ValueError("event_id must be a non-empty string")
    reply = client(url).search(index=index, body={
        "query": {"term": {"event.id": event_id}}, "size": size,
        "sort": [{"@timestamp": "asc"}, {"event.sequence": {"order": "asc", "unmapped_type": "long"}}]})
    return [hit["_source"] for hit in reply["hits"]["hits"]]


def errors_per_service(index: str = LOGS_INDEX, url: str | None = None, interval: str = "1m") -> dict[str, list[tuple[str, int]]]:
    """Return ``{service: [(bucket start, error count), ...]}`` from the logs' ``log.level: error`` lines."""
    reply = client(url).search(index=index, body={
        "size": 0, "query": {"term": {"log.level": "error"}},
        "aggs": {"service": {"terms": {"field": "service.name", "size": 50}, "aggs": {
            "over_time": {"date_histogram": {"field": "@timestamp", "fixed_interval": interval}}}}}})
    return {bucket["key"]: [(b["key_as_string"], b["doc_count"]) for b in bucket["over_time"]["buckets"]]
            for bucket in reply["aggregations"]["service"]["buckets"]}
