"""A tiny HTTP server on localhost that records JSON POSTs: a webhook receiver you can inspect.

Alert senders (``helpers.alerts`` with ``WORKBOOK_ALERT_WEBHOOK``) post to a URL; this receiver
stands in for Slack or PagerDuty in a notebook or a test, with nothing leaving the machine::

    with LocalWebhook() as hook, hook.as_alert_webhook():
        send_alert("demo", "something broke")
    hook.received  # [{"source": "demo", "message": "something broke", ...}]
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalWebhook:
    """Serve ``POST /`` on ``127.0.0.1`` (a free port) in a background thread; keep every JSON body.

    Attributes:
        received: the decoded bodies, oldest first (a body that is not JSON is kept as text).
        url: where to POST, e.g. ``http://127.0.0.1:40321/alerts``.
    """

    def __init__(self, path: str = "/alerts", status: int = 200) -> None:
        self.received: list[Any] = []
        self._lock = threading.Lock()
        self._path, self._status = path, status
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("start the webhook first (use it in a `with` block)")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self._path}"

    def start(self) -> LocalWebhook:
        """Start serving; returns self."""
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
                try:
                    value: Any = json.loads(body)
                except json.JSONDecodeError:
                    value = body
                with hook._lock:
                    hook.received.append(value)
                self.send_response(hook._status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # keep the notebook quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-webhook", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (received bodies are kept)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @contextmanager
    def as_alert_webhook(self) -> Iterator[str]:
        """Set ``WORKBOOK_ALERT_WEBHOOK`` to this receiver for the block (restored after); yields the URL."""
        saved = os.environ.get("WORKBOOK_ALERT_WEBHOOK")
        os.environ["WORKBOOK_ALERT_WEBHOOK"] = self.url
        try:
            yield self.url
        finally:
            if saved is None:
                os.environ.pop("WORKBOOK_ALERT_WEBHOOK", None)
            else:
                os.environ["WORKBOOK_ALERT_WEBHOOK"] = saved

    def __enter__(self) -> LocalWebhook:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
