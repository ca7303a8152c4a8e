"""Lab 05 logs: the embedded OpenSearch node (real, from Maven Central's jars), ECS logs shipped in bulk from
several services, and one event followed across them by its id."""

from __future__ import annotations

import logging
import uuid

import httpx
import psutil
import pytest

from helpers.monitoring.logs import (
    OpenSearchHandler,
    ecs_logger,
    errors_per_service,
    flush_logs,
    search_event,
)
from helpers.platform import opensearch_node as osn
from helpers.platform.config import monitoring_port


@pytest.fixture(scope="module")
def opensearch() -> str:
    """The suite's embedded OpenSearch (started once; stopped by the last test and at the end of the run)."""
    return osn.start_opensearch()


def test_node_is_green_on_loopback_with_the_log_template(opensearch):
    """Check health green on one node (0 replicas), both ports on 127.0.0.1 only, and the shared log mapping."""
    status = osn.opensearch_status()
    assert status["health"] == "green", f"expected a green single node, got {status}; read {osn.log_file()}"
    listening = {(c.laddr.ip.removeprefix("::ffff:"), c.laddr.port)
                 for c in psutil.Process(status["pid"]).net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    expected = {("127.0.0.1", monitoring_port("opensearch")), ("127.0.0.1", monitoring_port("opensearch_transport"))}
    assert listening == expected, f"expected OpenSearch to listen on {sorted(expected)} only, got {sorted(listening)}"
    template = httpx.get(f"{opensearch}/_index_template/workbook-logs", timeout=10).json()
    mapping = template["index_templates"][0]["index_template"]["template"]["mappings"]["properties"]
    assert mapping["event"]["properties"]["id"]["type"] == "keyword", f"expected event.id as keyword, got {mapping}"


def test_one_event_is_followed_across_services_by_its_id(opensearch):
    """Check ECS lines from two services come back, oldest first, by event id; errors are counted per service."""
    event_id, trace_id = uuid.uuid4().hex, uuid.uuid4().hex
    ingest = ecs_logger(f"ingest-{event_id[:6]}", stream=None)
    server = ecs_logger(f"model-server-{event_id[:6]}", stream=None)
    ingest.info("received", extra={"event.id": event_id, "trace.id": trace_id, "event.action": "ingest"})
    server.info("scored", extra={"event.id": event_id, "trace.id": trace_id, "event.action": "predict"})
    try:
        raise KeyError("user_id")
    except KeyError:
        server.exception("could not build features", extra={"event.id": event_id, "trace.id": trace_id})
    other = ecs_logger(f"other-{event_id[:6]}", stream=None)
    other.info("unrelated", extra={"event.id": uuid.uuid4().hex})
    for logger in (ingest, server, other):
        flush_logs(logger)
    found = search_event(event_id)
    got = [(doc["service"]["name"].split("-")[0], doc["log.level"], doc["message"]) for doc in found]
    assert got == [("ingest", "info", "received"), ("model", "info", "scored"),
                   ("model", "error", "could not build features")], f"expected the event's 3 lines in order, got {got}"
    assert {doc["trace"]["id"] for doc in found} == {trace_id}, "expected every line to carry the trace id"
    assert found[2]["error"]["type"] == "KeyError", f"expected the exception's type in error.type, got {found[2]}"
    errors = errors_per_service()
    assert sum(count for _, count in errors.get(server.name.removeprefix("workbook."), [])) == 1, (
        f"expected 1 error for the model server, got {errors}")


def test_a_down_log_store_keeps_the_records_and_never_raises(free_port):
    """Check the handler survives OpenSearch being unreachable: records kept for the next flush, nothing raised."""
    handler = OpenSearchHandler(url=f"http://127.0.0.1:{free_port}", batch_size=1000, max_buffer=3)
    logger = logging.getLogger(f"workbook.test-down-{uuid.uuid4().hex[:6]}")
    logger.addHandler(handler)
    logger.propagate = False
    for i in range(5):
        logger.warning("line %d", i)
    handler.flush()
    assert handler.sent == 0 and len(handler._buffer) == 3 and handler.dropped == 2, (
        f"expected 3 kept and 2 dropped (max_buffer=3), got sent={handler.sent} kept={len(handler._buffer)} "
        f"dropped={handler.dropped}")
    logger.removeHandler(handler)


def test_search_event_refuses_an_empty_id():
    with pytest.raises(ValueError, match="event_id"):
        search_event("")


def test_stop_leaves_no_process_behind(opensearch):
    """Check stop_opensearch ends the JVM."""
    pid = osn.node_pid()
    assert osn.stop_opensearch(), "expected the node to have been running"
    assert not (pid and psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE), (
        f"expected no OpenSearch process left, pid {pid} still runs")
    assert osn.health() is None, "expected nothing to answer after stop"
