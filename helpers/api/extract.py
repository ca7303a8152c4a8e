"""Extract one logical day from the events API into an immutable raw snapshot (Parquet).

:func:`fetch_events` pages through ``[start, end)`` with bounded retries (tenacity): connection
errors, 5xx and 429 are retried, honouring ``Retry-After``, at most ``max_attempts`` times per page;
then an :class:`ExtractError` names the URL and the page. A 401 or a malformed page fails at once
(retrying cannot fix them). :func:`write_snapshot` writes a day's snapshot at :func:`snapshot_path`
(``raw/events/date=YYYY-MM-DD/events.parquet``) atomically and read-only, the same bytes for the same
rows (same sha256). Keeping a written day untouched is the extract's job (Lab 05a, Task 1: the
function a learner writes, passed to :func:`helpers.pipeline.steps.extract`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from helpers.platform import config

SCHEMA = pa.schema([
    ("event_id", pa.int64()), ("event_time", pa.timestamp("ms", tz="UTC")), ("user_id", pa.int64()),
    ("session_id", pa.int64()), ("event_type", pa.string()), ("product_id", pa.int64()),
    ("category", pa.string()), ("price", pa.float64()), ("quantity", pa.int64()), ("amount", pa.float64()),
    ("device", pa.string()), ("country", pa.string()),
])
"""The raw snapshot's schema (the API's event fields); an empty day has it too."""

COLUMNS = SCHEMA.names


class ExtractError(RuntimeError):
    """The extract could not get a complete, well-formed day from the API.

    ``retryable`` is True when the API stayed unavailable (no answer, 5xx, 429) through every attempt:
    a later try may succeed. A refused token or a malformed page will not get better by retrying.
    """

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class _Transient(Exception):
    """A failure worth retrying: no connection, a timeout, a 5xx or a 429."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Snapshot:
    """What an extract wrote (small enough for an XCom: use :meth:`as_dict`)."""

    logical_date: str
    path: str
    rows: int
    sha256: str
    written: bool
    pages: int = 0
    retries: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _wait(base: float, max_wait: float):  # noqa: ANN202 (a tenacity wait strategy)
    def wait(state: RetryCallState) -> float:
        err = state.outcome.exception() if state.outcome else None
        if isinstance(err, _Transient) and err.retry_after is not None:
            return min(err.retry_after, max_wait)
        return min(base * 2 ** (state.attempt_number - 1), max_wait)
    return wait


def _retry_after(reply: httpx.Response) -> float | None:
    try:
        return max(0.0, float(reply.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _parse_page(reply: httpx.Response, page: int, where: str) -> tuple[pa.Table, str | None]:
    """Turn one page's body into a typed table and the next cursor, or fail naming the page."""
    try:
        body = json.loads(reply.content)
        records, cursor = body["events"], body["next_cursor"]
        if not isinstance(records, list) or not (cursor is None or isinstance(cursor, str)):
            raise TypeError("`events` must be a list and `next_cursor` a string or null")
        frame = pd.DataFrame.from_records(records, columns=COLUMNS) if records else pd.DataFrame(columns=COLUMNS)
        if records and (missing := [c for c in COLUMNS if c not in records[0]]):
            raise KeyError(f"events lack the fields {missing}")
        frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True, format="ISO8601")
        table = pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False)
    except (ValueError, KeyError, TypeError, pa.ArrowException) as err:
        raise ExtractError(f"page {page} of {where} is malformed ({type(err).__name__}: {err}); "
                           f"the API sent {len(reply.content)} bytes starting {reply.text[:80]!r}. "
                           f"Nothing was written: re-run the extract once the API sends whole pages.") from err
    return table, cursor


def fetch_events(start: datetime | str, end: datetime | str, *, url: str | None = None, token: str | None = None,
                 client_id: str = "extract", page_size: int = 5_000, max_attempts: int = 5,
                 backoff_s: float = 0.5, max_wait_s: float = 30.0, timeout_s: float = 30.0,
                 ) -> tuple[pd.DataFrame, dict[str, int]]:
    """Fetch every event with ``start <= event_time < end``, page by page.

    Args:
        start, end: the half-open UTC range (ISO strings or datetimes; naive means UTC).
        url, token: the API and its bearer token; default from :mod:`helpers.platform.config`.
        client_id: sent as ``X-Client-Id`` (rate limits and injected faults are per client).
        page_size: events per page (the API allows up to 10,000).
        max_attempts: tries per page before giving up (1 = no retry).
        backoff_s, max_wait_s: exponential backoff start and cap; ``Retry-After`` wins, capped too.
        timeout_s: per-request timeout.

    Returns:
        ``(events, {"pages": n, "retries": n})``; events sorted by ``(event_time, event_id)``.

    Raises:
        ExtractError: a page failed ``max_attempts`` times, was refused (401/4xx) or is malformed.
    """
    base = (url or config.api_url()).rstrip("/")
    headers = {"Authorization": f"Bearer {token or config.api_token()}", "X-Client-Id": client_id}
    params: dict[str, Any] = {"start": pd.Timestamp(start).isoformat(), "end": pd.Timestamp(end).isoformat(),
                              "limit": page_size}
    tables: list[pa.Table] = []
    stats = {"pages": 0, "retries": 0}
    cursor: str | None = None
    with httpx.Client(base_url=base, headers=headers, timeout=timeout_s) as client:
        while True:
            page = stats["pages"] + 1
            query = {**params, **({"cursor": cursor} if cursor else {})}
            where = f"{base}/v1/events?{httpx.QueryParams(query)}"

            def get() -> httpx.Response:
                try:
                    reply = client.get("/v1/events", params=query)
                except httpx.TransportError as err:
                    raise _Transient(f"{type(err).__name__}: {err or 'no answer'}") from err
                if reply.status_code == 429 or reply.status_code >= 500:
                    raise _Transient(f"HTTP {reply.status_code} {reply.text[:120]}", _retry_after(reply))
                return reply

            retrying = Retrying(stop=stop_after_attempt(max_attempts), wait=_wait(backoff_s, max_wait_s),
                                retry=retry_if_exception_type(_Transient), reraise=True,
                                before_sleep=lambda _state: stats.__setitem__("retries", stats["retries"] + 1))
            try:
                reply = retrying(get)
            except _Transient as err:
                raise ExtractError(f"page {page} ({where}) failed after {max_attempts} attempts; last error: "
                                   f"{err}. Is the API at {base} up? (`make services`, helpers.api.server.start_api(), "
                                   f"or WORKBOOK_API_URL for an API elsewhere)", retryable=True) from err
            if reply.status_code == 401:
                raise ExtractError(f"page {page} ({where}) was refused (401): send the API's bearer token "
                                   f"(WORKBOOK_API_TOKEN, default in helpers.platform.config)")
            if reply.status_code != 200:
                raise ExtractError(f"page {page} ({where}) answered HTTP {reply.status_code}: {reply.text[:200]}")
            table, cursor = _parse_page(reply, page, where)
            tables.append(table)
            stats["pages"] = page
            if cursor is None:
                break
    events = pa.concat_tables(tables).sort_by([("event_time", "ascending"), ("event_id", "ascending")])
    return events.to_pandas(), stats


def snapshot_path(logical_date: date | datetime | str, root: str | Path | None = None) -> Path:
    """Return the day's raw snapshot: ``<root>/raw/events/date=YYYY-MM-DD/events.parquet``."""
    day = pd.Timestamp(logical_date).date().isoformat()
    return Path(root or config.capstone_dir() / "data") / "raw" / "events" / f"date={day}" / "events.parquet"


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_snapshot(events: pd.DataFrame, path: str | Path) -> str:
    """Write ``events`` as Parquet atomically (temp file + rename), read-only; return its sha256.

    The bytes depend only on the rows: same rows, same file (no timestamps in the file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(events[COLUMNS], schema=SCHEMA, preserve_index=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return file_sha256(path)

