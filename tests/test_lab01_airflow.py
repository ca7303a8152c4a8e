"""Lab 01's helpers and DAG files on the embedded Airflow: fault injection, the webhook receiver,
best-practice checks, and the public DAG files (they import without errors, as the docker-compose
DAG processor imports them, and they run).

Runs cost about a second each once the in-process Execution API is warm; retries really wait.
"""

from __future__ import annotations

import sqlite3
import textwrap
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pendulum
import pytest

from helpers.airflow.runner import dag_import_errors, load_dag_file, run_dag
from helpers.airflow.setup import setup_airflow
from helpers.alerts.sink import last_alert_id, read_alerts, send_alert
from helpers.alerts.webhook import LocalWebhook
from helpers.feedback import dag_checks
from helpers.platform.config import REPO_ROOT

LAB_DAGS = REPO_ROOT / "notebooks" / "lab01" / "dags"


@pytest.fixture(scope="module", autouse=True)
def airflow_home() -> Path:
    return setup_airflow()


def test_lab_dag_files_import_like_the_dag_processor() -> None:
    """Check that every DAG file of the lab imports with DagBag (what docker-compose's processor does)"""
    files = sorted(LAB_DAGS.glob("*.py"))
    assert len(files) >= 2
    assert dag_import_errors(LAB_DAGS) == {}
    ids = {dag_id for path in files for dag_id in load_dag_file(path)}
    assert ids == {"lab01_first_dag", "lab01_daily_schedule"}


def test_lab_dag_files_import_without_the_workbook_on_sys_path(tmp_path: Path) -> None:
    """Check that the DAG files need only Airflow (the compose image has no pandas guarantee)"""
    import subprocess
    import sys

    code = ("import sys; from airflow.dag_processing.dagbag import DagBag\n"
            f"bag = DagBag(dag_folder={str(LAB_DAGS)!r})\n"
            "print(sorted(bag.dags), bag.import_errors)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'helpers', 'pyspark')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": ""}).stdout
    assert "['lab01_daily_schedule', 'lab01_first_dag'] {}" in out, out
    assert "'helpers" not in out and "'pyspark" not in out, f"DAG files imported heavy modules: {out}"


def test_public_dag_files_follow_the_practices_they_teach() -> None:
    """Check catchup=False, fixed start dates, tags and no parse-time work in the public DAG files"""
    for path in LAB_DAGS.glob("*.py"):
        for dag in load_dag_file(path).values():
            checks = dag_checks.dag_practices(dag, source=dag_checks.source_of(path))
            assert all(c.ok for c in checks), f"{path.name}:\n{dag_checks.report(checks)}"


def test_first_dag_runs_and_passes_xcoms() -> None:
    result = run_dag(LAB_DAGS / "lab01_first_dag.py", logical_date="2026-01-02")
    assert result.ok, result.summary()
    assert result.xcom("count_orders") == 3 and result.xcom("sum_revenue") == 49.75
    assert result.xcom("report") == "3 orders, revenue 49.75"
    assert result.tasks["notify"].state == "success"


@pytest.mark.parametrize("day, taken, skipped", [("2026-01-09", "weekday_report", "weekend_report"),
                                                 ("2026-01-10", "weekend_report", "weekday_report")])
def test_schedule_dag_branches_on_the_logical_date_and_reads_conf(day: str, taken: str, skipped: str) -> None:
    """Check the @task.branch demo: a Friday takes the weekday branch, a Saturday the weekend one"""
    result = run_dag(LAB_DAGS / "lab01_daily_schedule.py", logical_date=day, conf={"region": "EU"})
    assert result.ok, result.summary()
    assert result.tasks[taken].state == "success" and result.tasks[skipped].state == "skipped"
    assert result.tasks["publish"].state == "success", "the join runs after either branch"
    described = result.xcom("describe_run")
    assert described["ds"] == day and described["region"] == "EU"
    assert described["data_interval_start"] == described["data_interval_end"] == f"{day}T00:00:00+00:00"


def test_conf_of_one_run_does_not_leak_into_the_next() -> None:
    """Check that run_dag gives a run without conf the params' defaults, after a run with conf"""
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    with DAG("test_lab01_params", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
             catchup=False, params={"csv_path": "default.csv"}) as dag:
        PythonOperator(task_id="read_param", python_callable=lambda params: params["csv_path"])
    assert run_dag(dag, conf={"csv_path": "other.csv"}).xcom("read_param") == "other.csv"
    assert run_dag(dag).xcom("read_param") == "default.csv"


def _resilient(dag_id: str, steps: dict, retries: int = 2):
    """A DAG like the lab's Task 2 (kept here, not in helpers: it is part of the answer)."""
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG, chain

    def on_failure(context):
        ti = context["ti"]
        send_alert(f"test.{ti.dag_id}.{ti.task_id}", f"{ti.task_id} failed: {context['exception']}")

    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
             default_args={"retries": retries, "retry_delay": timedelta(seconds=1),
                           "retry_exponential_backoff": True, "max_retry_delay": timedelta(seconds=5),
                           "on_failure_callback": on_failure}) as dag:
        chain(*[PythonOperator(task_id=k, python_callable=v) for k, v in steps.items()])
    return dag


def test_flaky_fails_the_given_number_of_tries_then_returns() -> None:
    """Check the injected fault: two failed tries, then the result on try 3"""
    from helpers.airflow.faults import flaky

    result = run_dag(_resilient("test_lab01_flaky", {"call": flaky(2, result={"n": 1})}))
    call = result.tasks["call"]
    assert result.ok and call.try_number == 3 and result.xcom("call") == {"n": 1}
    assert [t.state for t in call.earlier_tries] == ["failed", "failed"]
    first_wait = (call.earlier_tries[1].start_date - call.earlier_tries[0].end_date).total_seconds()
    second_wait = (call.start_date - call.earlier_tries[1].end_date).total_seconds()
    assert first_wait >= 0.9 and second_wait >= 1.8, f"backoff waits {first_wait:.2f}s, {second_wait:.2f}s"


def test_always_fails_fires_the_failure_callback_once() -> None:
    from helpers.airflow.faults import always_fails

    dag_id = f"test_lab01_fail_{uuid.uuid4().hex[:6]}"
    since = last_alert_id()
    result = run_dag(_resilient(dag_id, {"boom": always_fails("kaput"), "after": always_fails()}, retries=1))
    assert result.state == "failed"
    assert result.tasks["boom"].try_number == 2 and result.tasks["after"].state == "upstream_failed"
    alerts = read_alerts(f"test.{dag_id}", since_id=since)
    assert [a.source for a in alerts] == [f"test.{dag_id}.boom"]
    assert "kaput" in alerts[0].message and "try 2" in alerts[0].message


def test_faults_outside_a_task_say_so() -> None:
    from helpers.airflow.faults import always_fails, flaky

    with pytest.raises(RuntimeError, match="only inside a running Airflow task"):
        flaky(1)()
    with pytest.raises(RuntimeError, match="only inside a running Airflow task"):
        always_fails()()
    with pytest.raises(ValueError):
        flaky(-1)


def test_webhook_receives_alerts_and_restores_the_environment(monkeypatch) -> None:
    """Check that send_alert POSTs to the local receiver while it is the configured webhook"""
    monkeypatch.delenv("WORKBOOK_ALERT_WEBHOOK", raising=False)
    import os

    with LocalWebhook() as hook:
        with hook.as_alert_webhook() as url:
            alert = send_alert("test.webhook", "hello", severity="warning", details={"n": 1})
            assert os.environ["WORKBOOK_ALERT_WEBHOOK"] == url
        assert "WORKBOOK_ALERT_WEBHOOK" not in os.environ
        send_alert("test.webhook", "not posted")  # the webhook is no longer configured
        request = urllib.request.Request(hook.url, data=b"plain text", method="POST")
        urllib.request.urlopen(request, timeout=5).close()
    assert alert.delivery == "table, webhook 200"
    assert hook.received[0]["message"] == "hello" and hook.received[0]["details"] == {"n": 1}
    assert hook.received[1:] == ["plain text"]
    with pytest.raises(RuntimeError, match="start the webhook"):
        hook.url


def test_alert_delivery_records_a_failing_webhook(free_port: int, monkeypatch) -> None:
    monkeypatch.setenv("WORKBOOK_ALERT_WEBHOOK", f"http://127.0.0.1:{free_port}/nobody")
    alert = send_alert("test.webhook", "to nowhere")
    assert alert.delivery.startswith("table, webhook failed")


HEAVY = '''
import pandas as pd
import pendulum
from airflow.sdk import dag, task
from datetime import datetime

LOOKUP = pd.read_csv("/data/big.csv")

@dag(schedule="@daily", start_date=datetime.now(), catchup=True)
def heavy():
    rows = open("/data/rows.txt").read()

    @task
    def fine():
        return pd.read_parquet("/data/x.parquet")  # inside a task: fine

    fine()

heavy()
'''


def test_parse_time_checks_find_heavy_calls_and_moving_start_dates() -> None:
    assert dag_checks.heavy_parse_time_calls(HEAVY) == ["line 7: pd.read_csv(...)", "line 11: open(...)"]
    assert dag_checks.dynamic_start_dates(HEAVY) == ["line 9: now()"]
    builder = textwrap.dedent('''
        def build(path):
            data = pd.read_csv(path)  # at build time: flagged
            @dag(schedule=None)
            def inner():
                @task
                def t():
                    return pd.read_csv(path)  # in a task: fine
            return inner()
    ''')
    assert dag_checks.heavy_parse_time_calls(builder) == ["line 3: pd.read_csv(...)"]


def test_dag_practices_flag_catchup_and_retries() -> None:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG("test_lab01_practices", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
             catchup=True) as dag:
        EmptyOperator(task_id="noop")
    checks = {c.name: c for c in dag_checks.dag_practices(dag, expect_retries=True)}
    assert not checks["catchup=False"].ok and not checks["tags"].ok and not checks["retries"].ok
    assert checks["fixed UTC start_date"].ok
    assert dag_checks.report(checks.values()).endswith("1 of 4 practices followed")


def test_idempotency_check_tells_append_from_replace(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (ds TEXT, v INT)")

    def append():
        with sqlite3.connect(db) as conn:
            conn.execute("INSERT INTO t VALUES ('2026-01-01', 1)")

    def replace():
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM t WHERE ds = '2026-01-01'")
            conn.execute("INSERT INTO t VALUES ('2026-01-01', 1)")

    def rows():
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT * FROM t ORDER BY ds").fetchall()

    assert not dag_checks.idempotency_check(append, rows).ok
    good = dag_checks.idempotency_check(replace, rows, times=3)
    assert good.ok and "same 1 rows" in good.detail
