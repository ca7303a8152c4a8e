"""Lab 05's extract source: the events API (real HTTP against the started service) and the extract client.

The suite's API serves ``generate_ecommerce(30_000, 42, "2026-01-01", 3)`` (see conftest.py); faults and
rate limits are set per client id, so each test disturbs only its own requests.
"""

from __future__ import annotations

import math
import os
import stat

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest

from autograder.reference.lab05a import extract_day
from helpers.api import server
from helpers.api.extract import SCHEMA, ExtractError, fetch_events, snapshot_path
from helpers.platform import config

DAY = "2026-01-02"


@pytest.fixture
def client_id(request, events_api) -> str:
    """A client id of this test's own; its faults and limits are removed afterwards."""
    name = request.node.name[:60]
    yield name
    server.clear_faults(name)
    httpx.delete(f"{events_api}/v1/admin/limits", params={"client": name}, timeout=10,
                 headers={"Authorization": f"Bearer {config.api_token()}"}).raise_for_status()


@pytest.fixture(scope="module")
def expected_day(events_api) -> pd.DataFrame:
    """The day's events straight from the generator, with the arguments the API was started with."""
    from helpers.api.app import dataset_args
    from helpers.data.ecommerce import generate_ecommerce

    events = generate_ecommerce(**dataset_args(), progress=False).events
    day = pd.Timestamp(DAY, tz="UTC")
    return events[(events.event_time >= day) & (events.event_time < day + pd.Timedelta(days=1))]


def _get(url: str, token: str | None, client: str) -> httpx.Response:
    headers = {"X-Client-Id": client} | ({"Authorization": f"Bearer {token}"} if token else {})
    return httpx.get(f"{url}/v1/events", params={"start": DAY, "end": "2026-01-03", "limit": 10},
                     headers=headers, timeout=10)


def test_pages_cover_the_day_exactly_once(events_api, client_id, expected_day):
    """Check that following next_cursor returns every event of the day once, in time order."""
    events, stats = fetch_events(DAY, "2026-01-03", client_id=client_id, page_size=997)
    assert len(expected_day) > 2_000, "the suite's dataset should have thousands of events per day"
    assert events.event_id.is_unique, "a page repeated events: the cursor must point after the last row sent"
    assert sorted(events.event_id) == sorted(expected_day.event_id), (
        f"expected the {len(expected_day)} events of {DAY}, got {len(events)}: pages skip or add rows")
    assert stats["pages"] == math.ceil(len(expected_day) / 997), f"expected full pages of 997, got {stats}"
    assert events.event_time.is_monotonic_increasing, "events should come in event_time order"
    merged = events.merge(expected_day, on="event_id", suffixes=("", "_generated"))
    assert (merged.amount == merged.amount_generated).all(), "amounts changed on the way through JSON"


def test_missing_or_wrong_token_is_refused(events_api, client_id):
    """Check that the API answers 401 without the bearer token and the extract says which token to send."""
    for token in (None, "not-the-token"):
        reply = _get(events_api, token, client_id)
        assert reply.status_code == 401, f"expected 401 with token {token!r}, got {reply.status_code}"
        assert reply.headers.get("WWW-Authenticate") == "Bearer"
    assert _get(events_api, config.api_token(), client_id).status_code == 200
    with pytest.raises(ExtractError, match="401.*WORKBOOK_API_TOKEN"):
        fetch_events(DAY, "2026-01-03", token="not-the-token", client_id=client_id)


def test_rate_limit_answers_429_with_retry_after(events_api, client_id):
    """Check that a client over its token bucket gets 429 and a Retry-After in whole seconds."""
    server.set_limits(client_id, rate=0.2, burst=1)
    assert _get(events_api, config.api_token(), client_id).status_code == 200
    reply = _get(events_api, config.api_token(), client_id)
    assert reply.status_code == 429, f"expected 429 once the bucket is empty, got {reply.status_code}"
    assert int(reply.headers["Retry-After"]) >= 1, "Retry-After should say how long to wait"


def test_429_then_success_honours_retry_after(events_api, client_id, tmp_path):
    """Check that the extract waits Retry-After after a 429 and then completes the day."""
    server.set_faults(client_id, throttle_next=1, retry_after=1)
    snap = extract_day(DAY, tmp_path, client_id=client_id, backoff_s=0.01)
    assert snap.retries == 1 and snap.rows > 0, f"expected one retry and a full day, got {snap}"


def test_transient_5xx_and_a_failing_fraction_are_retried(events_api, client_id, expected_day):
    """Check that 503s (the next two, then 30 % of requests) are retried until each page arrives."""
    server.set_faults(client_id, fail_next=2, fail_rate=0.3, seed=7)
    events, stats = fetch_events(DAY, "2026-01-03", client_id=client_id, page_size=1000,
                                 max_attempts=8, backoff_s=0.01)
    assert stats["retries"] >= 2, f"expected at least the two injected failures retried, got {stats}"
    assert len(events) == len(expected_day) and events.event_id.is_unique, "retries lost or repeated a page"


def test_api_down_fails_clearly_after_bounded_retries(free_port, tmp_path):
    """Check that an unreachable API gives an error naming the URL and the attempts, and no snapshot."""
    url = f"http://127.0.0.1:{free_port}"
    with pytest.raises(ExtractError) as err:
        extract_day(DAY, tmp_path, url=url, max_attempts=3, backoff_s=0.01)
    text = str(err.value)
    assert "after 3 attempts" in text and url in text and "page 1" in text, text
    assert not snapshot_path(DAY, tmp_path).exists(), "a failed extract must not leave a snapshot"


def test_persistent_5xx_gives_up_after_max_attempts(events_api, client_id, tmp_path):
    """Check that a 5xx that does not go away stops after max_attempts with the status in the error."""
    server.set_faults(client_id, fail_next=50, status=502)
    with pytest.raises(ExtractError, match=r"after 4 attempts.*HTTP 502"):
        extract_day(DAY, tmp_path, client_id=client_id, max_attempts=4, backoff_s=0.01)


def test_malformed_page_fails_naming_the_page(events_api, client_id, tmp_path):
    """Check that a page cut short fails at once, naming the page and its URL, and writes nothing."""
    server.set_faults(client_id, malformed_next=1)
    with pytest.raises(ExtractError, match=r"page 1 of http://\S+/v1/events\?start=2026-01-02.* is malformed"):
        extract_day(DAY, tmp_path, client_id=client_id)
    assert not snapshot_path(DAY, tmp_path).exists(), "a malformed page must not leave a snapshot"


def test_empty_day_writes_an_empty_snapshot_with_the_schema(events_api, client_id, tmp_path):
    """Check that a day without events gives a 0-row snapshot that still has the raw schema."""
    snap = extract_day("2026-03-01", tmp_path, client_id=client_id)
    assert snap.rows == 0 and snap.pages == 1, f"expected one empty page, got {snap}"
    assert pq.read_schema(snap.path).remove_metadata().equals(SCHEMA), "an empty day keeps the columns and types"


def test_snapshot_is_immutable_and_reproducible(events_api, client_id, tmp_path):
    """Check that a re-run keeps the day's snapshot untouched and a fresh extract gives the same bytes."""
    first = extract_day(DAY, tmp_path / "a", client_id=client_id, page_size=2500)
    mtime = os.stat(first.path).st_mtime_ns
    again = extract_day(DAY, tmp_path / "a", client_id=client_id)
    assert not again.written and again.sha256 == first.sha256, f"a re-run must keep the snapshot, got {again}"
    assert os.stat(first.path).st_mtime_ns == mtime, "a re-run rewrote the snapshot"
    assert not os.stat(first.path).st_mode & stat.S_IWUSR, "the snapshot should be read-only"
    fresh = extract_day(DAY, tmp_path / "b", client_id=client_id, page_size=777)
    assert fresh.sha256 == first.sha256 and fresh.rows == first.rows, (
        "the same day extracted again (other page size) must give the same bytes")
    assert list(tmp_path.glob("**/.*.tmp")) == [], "the atomic write left a temporary file"


def test_start_stop_status_and_loopback_only(events_api, tmp_path, monkeypatch, free_port):
    """Check a second API's lifecycle: reused when started twice, bound to 127.0.0.1, gone after stop."""
    import psutil

    assert server.start_api() == events_api and server.api_status()["reachable"]
    monkeypatch.setenv("WORKBOOK_STATE", str(tmp_path))
    monkeypatch.setenv("WORKBOOK_API_PORT", str(free_port))
    monkeypatch.setenv("WORKBOOK_API_ROWS", "2000")
    url = server.start_api()
    try:
        pid = server.api_pid()
        assert pid and server.start_api() == url and server.api_pid() == pid, "a second start must reuse it"
        listening = {c.laddr.ip for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN}
        assert listening == {"127.0.0.1"}, f"the API must listen on loopback only, got {listening}"
        assert server.api_status()["health"]["rows"] == 2000
    finally:
        assert server.stop_api(), "stop_api should find the API it started"
    assert server.api_pid() is None and not server.is_healthy(url), "the API is still running after stop"
