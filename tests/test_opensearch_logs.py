"""Lab 05 logs without a live node: the shipper survives a down log store, and bad input gets a clear error.
(The live OpenSearch tests are in tests/test_monitoring.py, with the other shared live services.)"""

from __future__ import annotations

import logging
import uuid

import pytest

from helpers.monitoring.logs import (
    OpenSearchHandler,
    search_event,
)


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

