"""Shared fixtures, and the suite's own state folder: tests never touch the learner's ``.state/``.

Every path the helpers derive (state, Airflow home, alert DB, course, data cache, jars) is pointed at
``.test-state/`` (or ``WORKBOOK_TEST_STATE``) before any test module is imported, and the suite's
Kafka broker listens on its own port (``WORKBOOK_KAFKA_PORT``, default 29092). Under pytest-xdist
each worker has its own Airflow home and alert DB, so two workers never share a SQLite writer.
The controller process snapshots the learner's ``.state/`` and ``data/generated`` at start and
fails the run if either changed (:func:`pytest_sessionfinish`), and stops the suite's broker.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from helpers.platform.config import REPO_ROOT

TEST_STATE = Path(os.environ.get("WORKBOOK_TEST_STATE", REPO_ROOT / ".test-state")).resolve()
LEARNER_STATE = (REPO_ROOT / ".state").resolve()
LEARNER_DATA = (REPO_ROOT / "data" / "generated").resolve()
LEARNER_SERVICE_FOLDERS = ("kafka", "airflow/logs")
"""Written by the learner's own running services (their broker, their Airflow UI), never by the suite."""

_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_SUFFIX = f"-{_WORKER}" if _WORKER else ""
os.environ.update({
    "WORKBOOK_STATE": str(TEST_STATE),
    "WORKBOOK_DATA": str(TEST_STATE / "data"),
    "WORKBOOK_JARS": str(TEST_STATE / "jars"),
    "WORKBOOK_COURSE": str(TEST_STATE / "course"),
    "AIRFLOW_HOME": str(TEST_STATE / f"airflow{_SUFFIX}"),
    "WORKBOOK_ALERTS_DB": str(TEST_STATE / "alerts" / f"alerts{_SUFFIX}.db"),
    # Lab 05: never a learner's or compose's MLflow server / DVC remote; one SQLite registry per xdist worker.
    "WORKBOOK_CAPSTONE": str(TEST_STATE / "capstone"),
    "WORKBOOK_DVC_REMOTE": str(TEST_STATE / "capstone" / "dvc-remote"),
    "MLFLOW_TRACKING_URI": f"sqlite:///{TEST_STATE / 'capstone' / f'mlflow{_SUFFIX}.db'}",
    # Lab 05's monitoring services: one home per xdist worker, beside its own ports (below), so a 05c
    # notebook executed on one worker and test_monitoring.py on the other never share a process or a log.
    "WORKBOOK_MONITORING_STATE": str(TEST_STATE / f"monitoring{_SUFFIX}"),
})
os.environ.setdefault("WORKBOOK_KAFKA_PORT", "29092")
# The suite's events API (Lab 05) sits next to its broker (which uses port and port + 1), serving a
# smaller dataset than the learner's default; WORKBOOK_API_PORT still wins.
os.environ.setdefault("WORKBOOK_API_PORT", str(int(os.environ["WORKBOOK_KAFKA_PORT"]) + 2))
os.environ.setdefault("WORKBOOK_API_ROWS", "30000")
os.environ.setdefault("WORKBOOK_API_DAYS", "3")
# Lab 05 monitoring: the suite's Prometheus, Pushgateway, Alertmanager, alert receiver and OpenSearch
# (HTTP, transport) on the broker's port + 20 .. + 25, so parallel checkouts and CI never collide.
# Each xdist worker gets its own six (gw0: + 30 .., gw1: + 40 ..): a notebook graded on one worker starts its own
# monitoring services (in the grading slot's state folder) while test_monitoring.py's run on the other. Ports
# a person set are kept; ports the controller derived are derived again by each worker (which inherits them).
_MONITORING = ("PROMETHEUS", "PUSHGATEWAY", "ALERTMANAGER", "ALERT_RECEIVER", "OPENSEARCH", "OPENSEARCH_TRANSPORT")
if _WORKER and os.environ.get("WORKBOOK_MONITORING_PORTS_DERIVED") == "1":
    for _service in _MONITORING:
        os.environ.pop(f"WORKBOOK_{_service}_PORT", None)
if not any(os.environ.get(f"WORKBOOK_{_service}_PORT") for _service in _MONITORING):
    os.environ["WORKBOOK_MONITORING_PORTS_DERIVED"] = "1"
_MONITORING_BASE = 20 + (10 * (int(_WORKER[2:]) + 1) if _WORKER[2:].isdigit() else 0)
for _offset, _service in enumerate(_MONITORING, start=_MONITORING_BASE):
    os.environ.setdefault(f"WORKBOOK_{_service}_PORT", str(int(os.environ["WORKBOOK_KAFKA_PORT"]) + _offset))
for _derived in ("AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
    os.environ.pop(_derived, None)  # derived from AIRFLOW_HOME below (an xdist worker inherits the controller's)
os.environ.pop("WORKBOOK_ALERT_WEBHOOK", None)  # a learner's real webhook gets no test alerts

# The labs that read a dataset size (Lab 01's ETL input, Lab 02's Spark dataset) use 200,000 rows
# under test instead of the learners' default (100k / 1M); nbgrader's kernels inherit this environment.
os.environ.setdefault("WORKBOOK_LAB_ROWS", "200000")

# nbgrader shells out to `alembic` and Jupyter to kernels: the environment's bin must be on PATH.
_BIN = str(Path(sys.executable).parent)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")

# pyspark.sql.connect (imported by Great Expectations) exits the process when __main__ has neither
# __spec__ nor __file__, taking that for a doctest run; an xdist worker's __main__ (execnet) has neither.
_MAIN = sys.modules["__main__"]
if _WORKER and getattr(_MAIN, "__spec__", None) is None and not hasattr(_MAIN, "__file__"):
    _MAIN.__file__ = "<pytest-xdist worker>"

# Airflow reads its configuration when first imported: set it before any test module imports airflow.
from helpers.airflow.setup import configure_airflow_env  # noqa: E402  (after the environment above)

configure_airflow_env()


_BEFORE = pytest.StashKey[tuple[bool, dict[str, list[int]]]]()


def learner_files() -> dict[str, list[int]]:
    """``{relative path: [size, mtime_ns]}`` of every file in the learner's state and data folders."""
    found: dict[str, list[int]] = {}
    for root in (LEARNER_STATE, LEARNER_DATA):
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            rel = path.relative_to(REPO_ROOT).as_posix()
            if path.is_file() and not any(rel.startswith(f".state/{f}/") for f in LEARNER_SERVICE_FOLDERS):
                stat = path.stat()
                found[rel] = [stat.st_size, stat.st_mtime_ns]
    return found


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if _is_controller(config):
        TEST_STATE.mkdir(parents=True, exist_ok=True)
        config.stash[_BEFORE] = (LEARNER_STATE.exists(), learner_files())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Controller only: the learner's folders are as they were; the suite's own broker is stopped."""
    if not _is_controller(session.config) or _BEFORE not in session.config.stash:
        return
    from helpers.api.server import stop_api
    from helpers.platform.config import external_api, external_kafka
    from helpers.platform.kafka_broker import stop_broker

    if not external_kafka():
        stop_broker()  # the suite's broker (in TEST_STATE, on its own port): never the learner's
    if not external_api():
        stop_api()  # likewise the suite's events API
    from helpers.platform.monitoring_services import stop_monitoring
    from helpers.platform.opensearch_node import stop_opensearch

    for home in sorted(TEST_STATE.glob("monitoring*")):  # each xdist worker's Prometheus & co. and OpenSearch
        os.environ["WORKBOOK_MONITORING_STATE"] = str(home)
        stop_monitoring()
        stop_opensearch()
    existed, before = session.config.stash[_BEFORE]
    after = learner_files()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if not existed and LEARNER_STATE.exists():
        changed.insert(0, ".state/ (created by the suite)")
    report = TEST_STATE / "learner-state-check.json"
    report.write_text(json.dumps({"learner_state": str(LEARNER_STATE), "changed": changed}, indent=2) + "\n")
    if changed:
        print(f"\nFAILED learner-state check: the learner's files changed while the suite ran: {changed[:20]}; "
              f"expected none (tests use {TEST_STATE}); look for a path built without helpers.platform.config")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED



@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The workbook's root folder."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def test_state() -> Path:
    """The suite's own state folder (``.test-state``)."""
    return TEST_STATE


@pytest.fixture(scope="session")
def kafka_broker() -> str:
    """The suite's live broker: the embedded one in the test state (started if needed), or the external one.

    It is stopped when the whole run ends (:func:`pytest_sessionfinish`); with xdist the workers share it.
    """
    from helpers.platform.kafka_broker import start_broker

    return start_broker()


@pytest.fixture(scope="session")
def events_api() -> str:
    """The suite's live events API (Lab 05): the embedded one in the test state, or ``WORKBOOK_API_URL``.

    It serves ``WORKBOOK_API_ROWS`` events over ``WORKBOOK_API_DAYS`` days (30,000 over 3 under test)
    and is stopped when the whole run ends; with xdist the workers share it.
    """
    from helpers.api.server import start_api

    return start_api()


@pytest.fixture(scope="session")
def spark():
    """This process's one SparkSession (local[*] unless SPARK_MASTER is set)."""
    from helpers.spark.session import get_spark, stop_spark

    session = get_spark("module05-tests")
    yield session
    stop_spark()


@pytest.fixture(scope="session")
def lock() -> dict[str, str]:
    """``{normalised name: version}`` of every ``name==version`` line of requirements.txt."""
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    from helpers.platform.ports import free_port as pick

    return pick()
