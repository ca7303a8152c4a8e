"""Connect to the MLflow registry: the embedded SQLite one, or a server, with a bounded wait.

:func:`connect` resolves the tracking URI (argument, ``MLFLOW_TRACKING_URI``, or SQLite under the
state folder), checks that the registry answers and points MLflow's tracking and registry at it.
A server that does not answer within ``wait_s`` raises :class:`RegistryUnavailable` before any write,
so nothing (least of all the ``champion`` alias) changes. MLflow's own HTTP retries default to about
4 minutes; :func:`connect` lowers them (unless set) so a server that dies later fails in seconds too.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from helpers.platform import config

EXPERIMENT = "lab05-capstone"
BOUNDED_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
"""MLflow's HTTP settings while the helpers run (an environment value set by the user wins)."""


class RegistryUnavailable(RuntimeError):
    """The MLflow tracking server / registry did not answer: nothing was logged or moved."""


def _wait_for_server(uri: str, wait_s: float) -> None:
    deadline, delay, last = time.monotonic() + wait_s, 0.25, "no attempt"
    while True:
        try:
            reply = httpx.get(f"{uri.rstrip('/')}/health", timeout=min(5.0, max(wait_s, 0.5)))
            if reply.status_code == 200:
                return
            last = f"HTTP {reply.status_code} {reply.text[:80]!r}"
        except httpx.HTTPError as err:
            last = f"{type(err).__name__}: {err or 'no answer'}"
        if time.monotonic() + delay > deadline:
            raise RegistryUnavailable(
                f"the MLflow registry at {uri} did not answer within {wait_s:.0f} s (last: {last}); nothing was "
                f"logged and no alias moved. Start the server (docker compose up mlflow) or unset "
                f"MLFLOW_TRACKING_URI to use the embedded SQLite registry ({config.capstone_dir() / 'mlflow.db'}).")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def connect(tracking_uri: str | None = None, wait_s: float = 10.0) -> str:
    """Point MLflow's tracking and registry at ``tracking_uri`` once it answers; return the URI.

    Args:
        tracking_uri: ``sqlite:///...``, ``http(s)://...``; default :func:`helpers.platform.config.mlflow_tracking_uri`.
        wait_s: how long a server may take to answer its ``/health`` check.

    Raises:
        RegistryUnavailable: a server did not answer within ``wait_s``.
    """
    import mlflow

    uri = tracking_uri or config.mlflow_tracking_uri()
    if uri.startswith(("http://", "https://")):
        for key, value in BOUNDED_HTTP.items():
            os.environ.setdefault(key, value)
        _wait_for_server(uri, wait_s)
    elif uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def experiment_id(name: str = EXPERIMENT) -> str:
    """Return the id of experiment ``name``, created if needed (after :func:`connect`).

    With the embedded registry the artifacts go to :func:`helpers.platform.config.mlflow_artifacts_dir`
    (MLflow's default would be ``./mlruns`` in whatever folder the process started in); a server keeps
    its own artifact root.
    """
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if mlflow.get_tracking_uri().startswith("sqlite:"):
        folder = config.mlflow_artifacts_dir()
        folder.mkdir(parents=True, exist_ok=True)
        location = folder.as_uri()
    return client.create_experiment(name, artifact_location=location)


def code_version(repo: str | Path | None = None) -> dict[str, str]:
    """The code version to tag a model with: ``{"code.git_commit": sha or "unknown", "code.git_dirty": ...}``."""
    where = str(repo or config.REPO_ROOT)
    try:
        sha = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"code.git_commit": "unknown", "code.git_dirty": "unknown"}
    return {"code.git_commit": sha, "code.git_dirty": str(bool(dirty)).lower()}
