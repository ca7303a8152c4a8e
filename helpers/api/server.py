"""The embedded events API: a uvicorn process on 127.0.0.1, started and stopped here like the broker.

It runs in the background, survives notebook restarts and is found again by its command line (which
names its home folder, ``<state>/api``), so a lost pid never leaves an orphan. With ``WORKBOOK_API_URL``
set (docker-compose's ``api`` service), nothing is started and every helper talks to that URL.
:func:`set_faults` and :func:`set_limits` change the running service's behaviour (for tests and demos).

``python -m helpers.api.server --start | --stop | --status`` (``--serve`` is what runs in the process).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from helpers.api.app import DATASET, dataset_args
from helpers.platform.config import REPO_ROOT, api_port, api_token, api_url, external_api, state_dir
from helpers.platform.processes import find_process, start_lock, stop_process, tail

SERVE_MODULE = "helpers.api.server"


def home() -> Path:
    """Return the API's folder: ``<state>/api`` (its log)."""
    return state_dir() / "api"


def log_file() -> Path:
    """Return the API process's log (what to read when it will not start)."""
    return home() / "api.log"


def api_pid() -> int | None:
    """Return the pid of our running API process (found by its command line), or None."""
    return find_process(SERVE_MODULE, "--serve", str(home()))


def is_healthy(url: str | None = None, timeout_s: float = 2.0) -> bool:
    """Return True if ``GET <url>/health`` answers 200 within ``timeout_s``."""
    try:
        return httpx.get(f"{url or api_url()}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def start_api(timeout: float = 60.0) -> str:
    """Start the embedded events API if it is not running and wait until it answers.

    Safe to call again: a running API is reused. With ``WORKBOOK_API_URL`` set nothing is started.

    Args:
        timeout: seconds to wait for ``/health`` before giving up.

    Returns:
        The API's base URL.
    """
    url = api_url()
    if external_api():
        return url
    if api_pid() is not None and is_healthy(url):
        return url
    from helpers.platform.ports import port_owner

    owner = port_owner(api_port())
    if owner and api_pid() is None:
        raise RuntimeError(f"Port {api_port()} is already taken by {owner}: stop that process, or set "
                           f"WORKBOOK_API_PORT to another port.")
    with start_lock(home()):  # two notebooks starting at once get one API
        if api_pid() is None:
            args = dataset_args()
            cmd = [sys.executable, "-m", SERVE_MODULE, "--serve", "--home", str(home()), "--port", str(api_port()),
                   *[item for key, value in args.items() for item in (f"--{key}", str(value))]]
            with open(log_file(), "ab") as out:
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=REPO_ROOT, start_new_session=True)
            del proc  # found again by its command line: see api_pid()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api_pid() is None:
            raise RuntimeError(f"The events API exited while starting. Last lines of {log_file()}:\n{tail(log_file(), 20)}")
        if is_healthy(url, timeout_s=1.0):
            return url
        time.sleep(0.2)
    raise TimeoutError(f"The events API did not answer within {timeout:.0f} s. Last lines of "
                       f"{log_file()}:\n{tail(log_file(), 20)}")


def stop_api(timeout: float = 15.0) -> bool:
    """Stop the embedded API (SIGTERM, then SIGKILL after ``timeout``); False if none was running."""
    return stop_process(api_pid, timeout, poll_s=0.1)


def api_status() -> dict[str, Any]:
    """Return the API's mode, URL, pid, whether it answers and what it serves."""
    url = api_url()
    info: dict[str, Any] = {"mode": "external" if external_api() else "embedded", "url": url,
                            "pid": None if external_api() else api_pid(), "reachable": False}
    try:
        reply = httpx.get(f"{url}/health", timeout=2.0)
        info.update(reachable=reply.status_code == 200, health=reply.json())
    except (httpx.HTTPError, ValueError):
        pass
    return info


def _admin(method: str, path: str, payload: dict[str, Any] | None = None,
           params: dict[str, str] | None = None) -> dict[str, Any]:
    reply = httpx.request(method, f"{api_url()}{path}", json=payload, params=params, timeout=10.0,
                          headers={"Authorization": f"Bearer {api_token()}"})
    reply.raise_for_status()
    return reply.json()


def set_faults(client: str = "*", *, fail_next: int = 0, fail_rate: float = 0.0, status: int = 503,
               throttle_next: int = 0, retry_after: int = 1, malformed_next: int = 0, seed: int = 0) -> dict[str, Any]:
    """Make the running API misbehave for ``client`` (its ``X-Client-Id``; ``"*"``: everyone).

    Args:
        fail_next: answer the next N event requests with ``status`` (a 5xx).
        fail_rate: afterwards, fail this fraction of requests (seeded by ``seed``).
        throttle_next: answer the next N requests with 429 and ``Retry-After: retry_after``.
        malformed_next: cut the next N pages short (invalid JSON).

    Returns:
        The settings now in force.
    """
    return _admin("PUT", "/v1/admin/faults", {
        "client": client, "fail_next": fail_next, "fail_rate": fail_rate, "status": status,
        "throttle_next": throttle_next, "retry_after": retry_after, "malformed_next": malformed_next, "seed": seed})


def clear_faults(client: str = "*") -> None:
    """Remove the faults injected for ``client``."""
    _admin("DELETE", "/v1/admin/faults", params={"client": client})


def set_limits(client: str = "*", *, rate: float = 50.0, burst: int = 100) -> dict[str, Any]:
    """Set ``client``'s rate limit: ``burst`` requests at once, refilled at ``rate`` per second."""
    return _admin("PUT", "/v1/admin/limits", {"client": client, "rate": rate, "burst": burst})


def _serve(argv: list[str]) -> None:
    import argparse

    import uvicorn

    from helpers.api.app import create_app

    parser = argparse.ArgumentParser()
    parser.add_argument("--home", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    for key, value in DATASET.items():
        parser.add_argument(f"--{key}", type=type(value), default=value)
    args = parser.parse_args(argv)
    app = create_app(args.rows, args.seed, args.start, args.days)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.api.server --start | --stop | --status``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        _serve(argv[1:])
        return 0
    import argparse

    parser = argparse.ArgumentParser(description="The embedded events API.")
    group = parser.add_mutually_exclusive_group(required=True)
    for flag in ("--start", "--stop", "--status"):
        group.add_argument(flag, action="store_true")
    args = parser.parse_args(argv)
    if args.start:
        print(start_api())
    elif args.stop:
        print("stopped" if stop_api() else "was not running")
    else:
        print(json.dumps(api_status(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
