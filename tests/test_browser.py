"""The two JupyterLabs in a real browser: the learner's (``make lab``) and the instructor's formgrader.

Headless Chromium (Debian's ``chromium``, not a browser Playwright downloads) is driven by Playwright's
Python package. Each test starts the real server command on a free port, in its own course folder
under the suite's state (``.test-state/browser/``), and saves screenshots to ``.test-state/artifacts/``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from helpers.platform.config import REPO_ROOT

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements.txt (it pins playwright)")
expect, sync_playwright = sync_api.expect, sync_api.sync_playwright

pytestmark = pytest.mark.notebook  # they run kernels and nbgrader: not in `make check`

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
INSTALL_CHROMIUM = "apt-get update && apt-get install -y chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NEWS_QUESTION = "Would you like to get notified about official Jupyter news?"


@pytest.fixture(scope="module")
def playwright() -> Iterator:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"the browser tests need Debian's chromium: {INSTALL_CHROMIUM}")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def page(playwright, tmp_path):
    """A page of a fresh headless Chromium (its own user-data folder)."""
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 900})
    context.set_default_timeout(120_000)  # a busy 2-core machine can take a minute to render a page
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def artifacts(test_state: Path) -> Path:
    folder = test_state / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def scratch(test_state: Path, name: str) -> Path:
    """An empty folder ``.test-state/browser/<name>`` (emptied if a previous run left it)."""
    folder = test_state / "browser" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def run_module(module: str, *args: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, (f"expected `python -m {module} {' '.join(args)}` to succeed, it exited "
                                  f"{done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def course_env(folder: Path, token: str) -> dict[str, str]:
    """The environment of a server on the test's course: its own Jupyter config and runtime folders."""
    return dict(os.environ, WORKBOOK_COURSE=str(folder / "course"), JUPYTER_TOKEN=token,
                JUPYTER_CONFIG_DIR=str(folder / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(folder / "jupyter-runtime"))


@pytest.fixture
def serve():
    """``serve(module, port, env, log, label)``: start a server command, return the URL it printed."""
    started: list[subprocess.Popen] = []

    def start(module: str, port: int, env: dict[str, str], log: Path, label: str) -> str:
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", module, "--port", str(port)], cwd=REPO_ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
        started.append(proc)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            found = re.search(rf"{label}: (http://127\.0\.0\.1:{port}/\S+)", log.read_text())
            if found and _status(port, env["JUPYTER_TOKEN"]) == 200:
                return found.group(1)
            time.sleep(0.5)
        pytest.fail(f"expected `python -m {module}` to print '{label}: <url>' and answer on port {port} within "
                    f"120 s; exit code {proc.poll()}, its log:\n{log.read_text()[-3000:]}")

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _status(port: int, token: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


def wait_for_idle_kernel(page, url: str) -> None:
    """Wait until the server's kernel for the open notebook is idle and the page shows it connected."""
    base, token = url.split("/lab", 1)[0], url.split("token=", 1)[1]
    deadline = time.monotonic() + 120
    states: list[str] = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as response:
            states = [s["kernel"]["execution_state"] for s in json.loads(response.read())]
        if states == ["idle"]:
            break
        time.sleep(0.5)
    assert states == ["idle"], f"expected one idle kernel for the notebook within 120 s, the server lists {states}"
    expect(page.locator(".jp-StatusBar-Widget", has_text="| Idle").first).to_be_visible()


def menu_labels(page) -> list[str]:
    return [label.inner_text() for label in page.locator(".lm-MenuBar-itemLabel").all()]


def sidebar_titles(page) -> list[str]:
    return [tab.get_attribute("title") or "" for tab in page.locator(".jp-SideBar .lm-TabBar-tab").all()]


def news_popups(page) -> list[str]:
    return [toast.inner_text() for toast in page.locator(".Toastify__toast").all()]


def test_plain_jupyterlab_shows_what_the_learners_lab_hides(page, test_state, free_port):
    """Control for the selectors below: JupyterLab as installed has the Nbgrader menu, the sidebar, the pop-up."""
    folder = scratch(test_state, "plain")
    env = course_env(folder, "plain-token")
    log = folder / "server.log"
    with open(log, "w") as out:  # the bare command, none of the workbook's settings
        proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
                                 f"--port={free_port}", "--IdentityProvider.token=plain-token",
                                 f"--ServerApp.root_dir={folder}", "--allow-root"], cwd=folder, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while _status(free_port, "plain-token") != 200 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        page.goto(f"http://127.0.0.1:{free_port}/lab?token=plain-token")
        page.get_by_text(NEWS_QUESTION).wait_for()
        assert "Nbgrader" in menu_labels(page), f"expected an Nbgrader menu in plain JupyterLab: {menu_labels(page)}"
        assert any("Create Assignment" in t for t in sidebar_titles(page)), sidebar_titles(page)
        assert any(NEWS_QUESTION in text for text in news_popups(page)), news_popups(page)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_learner_lab_runs_the_doctor_without_instructor_tools_or_news(page, serve, test_state, artifacts, free_port,
                                                                      kafka_broker):
    """`make lab`'s server (services started, Lab 00 released): open Lab 00, run the setup cell, read the doctor."""
    folder = scratch(test_state, "learner")
    env = course_env(folder, "learner-token")
    run_module("autograder.release", "--assignment", "lab00", env=env)
    url = serve("helpers.platform.jupyter", free_port, env, folder / "server.log", "JupyterLab")

    page.goto(url)  # the URL the launcher printed: Lab 00's folder
    page.locator(".jp-DirListing-item", has_text="00_environment_check.ipynb").dblclick()
    setup = page.locator(".jp-CodeCell", has_text="Setup: do not change this cell").first
    wait_for_idle_kernel(page, url)
    setup.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    expect(setup.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=30_000)
    try:  # the prompt turns from [*] to [1] when the cell has finished
        expect(setup.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"), timeout=180_000)
    finally:
        page.screenshot(path=str(artifacts / "learner-lab00.png"))
    report = setup.locator(".jp-OutputArea").inner_text()
    setup.screenshot(path=str(artifacts / "learner-lab00-doctor-cell.png"))

    for check in ("python", "java", "maven", "memory", "ports", "kafka", "spark", "airflow"):
        assert re.search(rf"^\[(OK  |FAIL)\] {check}\b", report, re.M), (
            f"expected the doctor's '{check}' line in the setup cell's output, got:\n{report}\n"
            f"(run the cell by hand in `make lab`; the server log is {folder / 'server.log'})")
    assert re.search(r"^\[OK  \] python ", report, re.M), f"expected '[OK  ] python', got:\n{report}"
    assert re.search(r"^Ready\.$", report, re.M), (
        f"expected the doctor to end with 'Ready.' (the suite's broker runs at {kafka_broker}), got:\n{report}")
    assert "Traceback" not in report, f"expected the setup cell to run without an exception, got:\n{report}"

    menus = menu_labels(page)
    assert "Kernel" in menus and "Nbgrader" not in menus, f"expected JupyterLab's menus without Nbgrader, got {menus}"
    assert not any("Create Assignment" in t for t in sidebar_titles(page)), (
        f"expected no 'Create Assignment' sidebar for learners, got tabs {sidebar_titles(page)}")
    assert page.locator(".jp-NotebookPanel-toolbar [title='Validate Assignment']").count() == 1, (
        "expected the notebook's 'Validate Assignment' button (nbgrader's validation stays for learners)")
    assert news_popups(page) == [], f"expected no pop-up over the notebook, got {news_popups(page)}"
    assert page.get_by_text(NEWS_QUESTION).count() == 0


def answered_lab04(release: Path, dest: Path) -> Path:
    """A learner's Lab 04 hand-in: the released files, both questions for the instructor answered."""
    shutil.copytree(release, dest)
    notebook = dest / "04_data_quality.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    answered = 0
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and meta.get("solution"):  # a manually graded answer
            grade_id = meta["grade_id"]
            cell.source = f"Carol answers the {grade_id.removeprefix('manual_').replace('_', ' ')} question here."
            answered += 1
    assert answered == 2, f"expected Lab 04's two manually graded answers, found {answered}"
    nbformat.write(nb, notebook)
    return notebook


def _saved(page, selector: str, value: str, api: str, attempts: int = 3):
    """Type ``value`` into the formgrader field ``selector``, leave it, and return the save request's response.

    Formgrader saves a field on its ``change`` event, through handlers its scripts bind after the page
    loads. On a loaded machine (the whole suite on 2 cores) a field can be filled before they are bound:
    then nothing is saved, and the page is loaded again (the field shows the server's value) to try again.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(attempts):
        try:
            with page.expect_response(lambda r: api in r.url and r.request.method == "PUT", timeout=60_000) as put:
                page.locator(selector).fill(value)
                page.locator(selector).press("Tab")
            return put.value
        except PlaywrightTimeout:
            page.reload()
            page.wait_for_load_state("networkidle")
    raise AssertionError(f"expected formgrader to save {selector} = {value!r} (a PUT to {api}), none came in "
                         f"{attempts} attempts of 60 s; see the server log and the page in the artifacts folder")


def test_instructor_grades_a_manual_answer_in_formgrader_and_it_lands_in_grades_csv(
        page, serve, test_state, artifacts, free_port):
    """make grade, then make formgrader: two manual scores and a comment, then make grades: grades.csv, feedback.

    Lab 04, not Lab 00: Lab 00 has no manually graded answer, and Lab 04's release grades fastest.
    """
    folder = scratch(test_state, "instructor")
    env = course_env(folder, "instructor-token")
    course = folder / "course"
    run_module("autograder.release", "--assignment", "lab04", env=env)
    answered_lab04(course / "release" / "lab04", folder / "submissions" / "carol" / "lab04")
    run_module("autograder.grade", str(folder / "submissions"), "--assignment", "lab04", env=env, timeout=600)
    with open(course / "grades.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["student"] == "carol" and row["needs_manual_grading"] == "True", (
        f"expected carol's answered questions to wait for a person, got {row}")

    url = serve("autograder.formgrader", free_port, env, folder / "server.log", "Formgrader")
    page.goto(url)
    page.get_by_role("link", name="Manual Grading").first.click()
    page.get_by_role("link", name="lab04").click()
    page.get_by_role("link", name="04_data_quality").click()
    page.get_by_role("link", name="Submission #1").wait_for()
    page.screenshot(path=str(artifacts / "formgrader-submissions.png"))
    page.get_by_role("link", name="Submission #1").click()
    page.wait_for_load_state("networkidle")  # the page binds its save-on-change handlers once its scripts load
    assert "Carol answers the code quality question here." in page.locator("body").inner_text(), (
        "expected the submission page to show carol's written answer")
    for grade_id, points in (("manual_code_quality", "4"), ("manual_best_practices", "3")):
        put = _saved(page, f"input#{grade_id}", points, "/formgrader/api/grade/")
        assert put.status == 200 and put.json()["manual_score"] == float(points), put.text()
    put = _saved(page, "textarea#manual_code_quality-comment", "Name the masks after the rule they check.",
                 "/formgrader/api/comment/")
    assert put.status == 200, put.text()
    page.locator("input#manual_code_quality").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "formgrader-manual-scores.png"))

    done = run_module("autograder.grades", "--feedback", env=env)
    assert "waiting for manual grading: none" in done.stdout, done.stdout
    with open(course / "grades.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    expected = {"manual_score": "7.0", "max_manual_score": "10.0", "score": "7.0", "max_score": "25.0",
                "needs_manual_grading": "False", "auto_score": "0.0", "status": "graded"}
    assert {k: row[k] for k in expected} == expected, f"expected {expected} in grades.csv, got {row}"
    feedback = Path(row["feedback_html"]).read_text()
    assert "Name the masks after the rule they check." in feedback, (
        f"expected the instructor's comment in carol's regenerated feedback {row['feedback_html']}")
