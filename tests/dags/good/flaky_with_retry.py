"""A task that fails on its first try and succeeds on the retry, plus one reading dag_run.conf."""

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["workbook", "test"],
)
def flaky_with_retry():
    @task(retries=1, retry_delay=timedelta(seconds=1))
    def call_flaky_api() -> str:
        context = get_current_context()
        if context["ti"].try_number < 2:
            raise ConnectionError("the API timed out (first try always does)")
        return "ok"

    @task
    def read_conf() -> dict:
        context = get_current_context()
        return {"conf": dict(context["dag_run"].conf or {}), "ds": context["ds"]}

    call_flaky_api() >> read_conf()


flaky_with_retry()
