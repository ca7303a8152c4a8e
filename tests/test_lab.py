"""`make lab`'s server: JupyterLab on the released notebooks, token required, loopback only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import nbformat
import psutil
import pytest

from helpers.platform.config import REPO_ROOT


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture
def lab_server(tmp_path, free_port):
    course = tmp_path / "course"
    (course / "release" / "lab00").mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), course / "release" / "lab00" / "00_check.ipynb")
    port, token = free_port, "test-token-123"
    env = dict(os.environ, WORKBOOK_COURSE=str(course), JUPYTER_TOKEN=token,
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    proc = subprocess.Popen([sys.executable, "-m", "helpers.platform.jupyter", "--port", str(port)], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if _get(f"{base}/api/status?token={token}")[0] == 200:
                break
        except OSError:
            time.sleep(0.5)
    try:
        yield proc, base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_lab_serves_released_notebooks_with_token_on_loopback(lab_server):
    proc, base, token = lab_server
    assert proc.poll() is None, f"JupyterLab exited:\n{proc.stdout.read()}"
    assert _get(f"{base}/api/status?token={token}")[0] == 200
    assert _get(f"{base}/api/contents/lab00")[0] in (401, 403), "the API must refuse a request without token"
    status, body = _get(f"{base}/api/contents/lab00?token={token}")
    assert status == 200 and "00_check.ipynb" in [c["name"] for c in json.loads(body)["content"]]
    listening = {c.laddr.ip for c in psutil.Process(proc.pid).net_connections(kind="tcp")
                 if c.status == psutil.CONN_LISTEN}
    assert listening and listening <= {"127.0.0.1"}, f"JupyterLab must listen on 127.0.0.1 only: {listening}"


def test_lab_without_released_notebooks_says_what_to_run(tmp_path, free_port):
    env = dict(os.environ, WORKBOOK_COURSE=str(tmp_path / "empty"))
    done = subprocess.run([sys.executable, "-m", "helpers.platform.jupyter", "--port", str(free_port)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "make release" in done.stderr


def test_learner_lab_page_disables_instructor_plugins_and_news(lab_server):
    """The page config the browser gets: nbgrader's instructor plugins and the news pop-up are off."""
    from helpers.platform.jupyter import LEARNER_DISABLED_PLUGINS, NEWS_PLUGIN

    proc, base, token = lab_server
    status, body = _get(f"{base}/lab?token={token}")
    assert status == 200, f"expected JupyterLab's page, got HTTP {status}"
    found = re.search(rb'<script id="jupyter-config-data" type="application/json">(.*?)</script>', body, re.S)
    assert found, "expected the page config (#jupyter-config-data) in JupyterLab's page"
    disabled = set(json.loads(found.group(1))["disabledExtensions"])
    assert set(LEARNER_DISABLED_PLUGINS) <= disabled and NEWS_PLUGIN in disabled, (
        f"expected {sorted(LEARNER_DISABLED_PLUGINS)} disabled, the page disables {sorted(disabled)}")
    assert "@jupyter/nbgrader:validate-assignment" not in disabled, "learners keep assignment validation"
    assert _get(f"{base}/formgrader?token={token}")[0] == 404, "expected no formgrader on the learners' server"


def test_formgrader_without_a_gradebook_says_to_grade_first(tmp_path, free_port):
    env = dict(os.environ, WORKBOOK_COURSE=str(tmp_path / "empty"))
    done = subprocess.run([sys.executable, "-m", "autograder.formgrader", "--port", str(free_port)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "make grade" in done.stderr, (
        f"expected exit 1 and a hint to run `make grade`, got {done.returncode}: {done.stderr}")
