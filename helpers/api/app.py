"""The events API: a FastAPI app serving the generated e-commerce events by time range.

``GET /v1/events?start=&end=&cursor=&limit=`` returns one page of the events with
``start <= event_time < end`` in ``(event_time, event_id)`` order, and ``next_cursor`` (``null`` on
the last page). It behaves like a real vendor API so that an extract task has something to be robust
against: a bearer token (401), a token-bucket rate limit per client (429 + ``Retry-After``) and
injectable faults (``PUT /v1/admin/faults``: fail the next N requests or a fraction of them with a 5xx,
throttle, or send a truncated page). Clients name themselves with ``X-Client-Id``; limits and faults
can target one client, so tests and notebooks never disturb each other. ``GET /health`` needs no token.

:func:`create_app` builds the app and generates the dataset (seeded, offline) when it is called.
"""

from __future__ import annotations

import base64
import math
import os
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Header, HTTPException, Query, Response
from pydantic import BaseModel, Field

MAX_LIMIT = 10_000
MAX_RANGE_DAYS = 7
ANY_CLIENT = "*"
DATASET: dict[str, Any] = {"rows": 200_000, "seed": 42, "start": "2026-01-01", "days": 7}
"""What the API serves by default; ``WORKBOOK_API_ROWS`` / ``_SEED`` / ``_START`` / ``_DAYS`` override."""


def dataset_args() -> dict[str, Any]:
    """The generator arguments to serve: :data:`DATASET` with the environment's overrides."""
    return {key: type(value)(os.environ.get(f"WORKBOOK_API_{key.upper()}", value)) for key, value in DATASET.items()}


class FaultSettings(BaseModel):
    """Faults to inject into ``/v1/events`` for one client (``client``) or every client (``"*"``)."""

    client: str = ANY_CLIENT
    fail_next: int = Field(0, ge=0, description="answer the next N requests with `status`")
    fail_rate: float = Field(0.0, ge=0, le=1, description="then fail this fraction of requests")
    status: int = Field(503, ge=500, le=599)
    throttle_next: int = Field(0, ge=0, description="answer the next N requests with 429")
    retry_after: int = Field(1, ge=0, le=60, description="seconds, sent with every 429")
    malformed_next: int = Field(0, ge=0, description="send the next N pages truncated")
    seed: int = 0


class LimitSettings(BaseModel):
    """A token bucket: ``burst`` requests at once, refilled at ``rate`` per second."""

    client: str = ANY_CLIENT
    rate: float = Field(50.0, gt=0)
    burst: int = Field(100, ge=1)


@dataclass
class _Bucket:
    rate: float
    burst: int
    tokens: float
    updated: float = field(default_factory=time.monotonic)

    def take(self) -> float:
        """Take one token; return 0 if granted, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class _Faults:
    settings: FaultSettings
    rng: random.Random

    def pick(self) -> str | None:
        """Consume one fault for this request: ``"fail"``, ``"throttle"``, ``"malformed"`` or None."""
        s = self.settings
        for name, attr in (("throttle", "throttle_next"), ("fail", "fail_next"), ("malformed", "malformed_next")):
            if getattr(s, attr) > 0:
                setattr(s, attr, getattr(s, attr) - 1)
                return name
        return "fail" if s.fail_rate and self.rng.random() < s.fail_rate else None


class _Events:
    """The served events, sorted by ``(event_time, event_id)``, with their times as int64 ns."""

    def __init__(self, rows: int, seed: int, start: str, days: int) -> None:
        from helpers.data.ecommerce import generate_ecommerce

        events = generate_ecommerce(rows, seed, start, days, progress=False).events
        self.frame = events.sort_values(["event_time", "event_id"], kind="stable").reset_index(drop=True)
        self.ns = self.frame["event_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)

    def bounds(self, start_ns: int, end_ns: int) -> tuple[int, int]:
        """Row positions ``[lo, hi)`` of the events with ``start <= event_time < end``."""
        return int(np.searchsorted(self.ns, start_ns, "left")), int(np.searchsorted(self.ns, end_ns, "left"))

    def page_json(self, lo: int, hi: int) -> str:
        """The rows ``[lo, hi)`` as a JSON array of records (ISO-8601 UTC times, millisecond precision)."""
        if hi <= lo:
            return "[]"
        return self.frame.iloc[lo:hi].to_json(orient="records", date_format="iso", date_unit="ms")


def _utc_ns(value: datetime) -> int:
    """A datetime as UTC nanoseconds; a naive value is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(pd.Timestamp(value).tz_convert("UTC").value)


def encode_cursor(start_ns: int, end_ns: int, position: int) -> str:
    """An opaque cursor: the range it belongs to and the row position the next page starts at."""
    return base64.urlsafe_b64encode(f"{start_ns}:{end_ns}:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, start_ns: int, end_ns: int) -> int:
    """Return the position in ``cursor``; 400 if it is garbage or belongs to another range."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        c_start, c_end, position = (int(part) for part in raw.split(":"))
    except (ValueError, UnicodeDecodeError) as err:
        raise HTTPException(400, f"invalid cursor {cursor!r}: pass back next_cursor unchanged") from err
    if (c_start, c_end) != (start_ns, end_ns):
        raise HTTPException(400, "this cursor belongs to another start/end range: keep start and end "
                                 "fixed while paging")
    return position


def create_app(rows: int = 200_000, seed: int = 42, start: str = "2026-01-01", days: int = 7,
               token: str | None = None) -> FastAPI:
    """Build the events API and generate its dataset (``generate_ecommerce(rows, seed, start, days)``).

    Args:
        rows, seed, start, days: the generator's arguments (the same arguments give the same events).
        token: the bearer token clients must send; default :func:`helpers.platform.config.api_token`.

    Returns:
        The FastAPI app, ready for uvicorn.
    """
    from helpers.platform.config import api_token

    token = token or api_token()
    data = _Events(rows, seed, start, days)
    lock = threading.Lock()
    limits: dict[str, LimitSettings] = {ANY_CLIENT: LimitSettings()}
    buckets: dict[str, _Bucket] = {}
    faults: dict[str, _Faults] = {}
    stats: dict[str, int] = {}
    app = FastAPI(title="Module 05 events API", version="1.0")

    def authorize(authorization: str | None) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token: send `Authorization: Bearer <token>`",
                                headers={"WWW-Authenticate": "Bearer"})

    def count(what: str) -> None:
        with lock:
            stats[what] = stats.get(what, 0) + 1

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness and what is served (no token needed)."""
        first, last = (data.frame["event_time"].iloc[[0, -1]].astype(str) if len(data.frame) else ("", ""))
        return {"status": "ok", "rows": len(data.frame), "seed": seed, "start": start, "days": days,
                "first_event": first, "last_event": last}

    @app.get("/v1/events")
    def events(start: datetime = Query(..., description="inclusive, ISO-8601 (naive = UTC)"),
               end: datetime = Query(..., description="exclusive"),
               cursor: str | None = None, limit: int = Query(1000, ge=1, le=MAX_LIMIT),
               authorization: str | None = Header(None),
               x_client_id: str = Header("anonymous")) -> Response:
        """One page of events with ``start <= event_time < end``."""
        authorize(authorization)
        start_ns, end_ns = _utc_ns(start), _utc_ns(end)
        if not 0 < end_ns - start_ns <= MAX_RANGE_DAYS * 86_400 * 10**9:
            raise HTTPException(400, f"need start < end and at most {MAX_RANGE_DAYS} days between them")
        with lock:
            policy = limits.get(x_client_id, limits[ANY_CLIENT])
            bucket = buckets.get(x_client_id)
            if bucket is None or (bucket.rate, bucket.burst) != (policy.rate, policy.burst):
                bucket = buckets[x_client_id] = _Bucket(policy.rate, policy.burst, float(policy.burst))
            wait = bucket.take()
            fault, injected = None, FaultSettings()
            for key in () if wait else (x_client_id, ANY_CLIENT):
                if (active := faults.get(key)) and (fault := active.pick()):
                    injected = active.settings.model_copy()
                    break
        if wait or fault == "throttle":
            count("429")
            seconds = math.ceil(wait) if wait else injected.retry_after
            raise HTTPException(429, "rate limit exceeded: wait Retry-After seconds",
                                headers={"Retry-After": str(seconds)})
        if fault == "fail":
            count(str(injected.status))
            raise HTTPException(injected.status, "injected transient failure: retry later")
        lo, hi = data.bounds(start_ns, end_ns)
        position = decode_cursor(cursor, start_ns, end_ns) if cursor else lo
        if not lo <= position <= hi:
            raise HTTPException(400, "cursor out of range: pass back next_cursor unchanged")
        stop = min(position + limit, hi)
        next_cursor = f'"{encode_cursor(start_ns, end_ns, stop)}"' if stop < hi else "null"
        body = f'{{"events":{data.page_json(position, stop)},"next_cursor":{next_cursor},"count":{stop - position}}}'
        if fault == "malformed":
            body = body[: max(1, len(body) // 2)]  # a page cut short, as by a broken proxy
        count("200")
        return Response(body, media_type="application/json")

    @app.put("/v1/admin/faults")
    def set_faults(settings: FaultSettings, authorization: str | None = Header(None)) -> dict[str, Any]:
        """Inject faults for one client (or ``"*"``); replaces that client's earlier settings."""
        authorize(authorization)
        with lock:
            faults[settings.client] = _Faults(settings.model_copy(), random.Random(settings.seed))
        return settings.model_dump()

    @app.delete("/v1/admin/faults")
    def clear_faults(client: str = ANY_CLIENT, authorization: str | None = Header(None)) -> dict[str, str]:
        authorize(authorization)
        with lock:
            faults.pop(client, None)
        return {"cleared": client}

    @app.put("/v1/admin/limits")
    def set_limits(settings: LimitSettings, authorization: str | None = Header(None)) -> dict[str, Any]:
        """Set the rate limit of one client (or the default, ``"*"``); its bucket starts full."""
        authorize(authorization)
        with lock:
            limits[settings.client] = settings
            buckets.pop(settings.client, None)
        return settings.model_dump()

    @app.delete("/v1/admin/limits")
    def clear_limits(client: str, authorization: str | None = Header(None)) -> dict[str, str]:
        authorize(authorization)
        with lock:
            if client != ANY_CLIENT:
                limits.pop(client, None)
            buckets.pop(client, None)
        return {"cleared": client}

    @app.get("/v1/admin/stats")
    def get_stats(authorization: str | None = Header(None)) -> dict[str, int]:
        """Responses of ``/v1/events`` by status code since start."""
        authorize(authorization)
        with lock:
            return dict(stats)

    return app


def app_from_env() -> FastAPI:
    """The app for ``uvicorn helpers.api.app:app_from_env --factory`` (docker-compose's ``api``)."""
    return create_app(**dataset_args())
