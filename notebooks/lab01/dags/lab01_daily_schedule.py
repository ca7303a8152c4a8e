"""Lab 01: a scheduled DAG with a data interval, run conf, and a branch written with ``@task.branch``.

- ``schedule="0 6 * * *"``: a cron expression, every day at 06:00 UTC. In Airflow 3 a cron string
  means a *trigger* timetable: each run's ``data_interval_start`` and ``data_interval_end`` are
  both its logical date. ``catchup=False``: unpausing the DAG does not create a run for every day
  since ``start_date``; use ``airflow backfill create`` for past dates on purpose.
- ``params``: defaults a manual trigger can override with run conf
  (``airflow dags trigger lab01_daily_schedule --conf '{"region": "EU"}'``).
- ``pick_report`` chooses one downstream task by returning its id; the other is skipped, and
  ``publish`` uses the trigger rule ``none_failed_min_one_success`` so that it still runs after
  whichever branch ran.

Nothing heavy happens at the top of this file: the scheduler parses it every 30 seconds.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="lab01_daily_schedule",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"region": "ALL"},
    tags=["module05", "lab01"],
)
def lab01_daily_schedule():
    """Describe the run's interval, then build a weekday or a weekend report, then publish it."""

    @task
    def describe_run() -> dict:
        """Return what Airflow tells a task about its run: dates, interval, and the run conf."""
        context = get_current_context()
        return {
            "ds": context["ds"],
            "logical_date": context["logical_date"].isoformat(),
            "data_interval_start": context["data_interval_start"].isoformat(),
            "data_interval_end": context["data_interval_end"].isoformat(),
            "region": context["params"]["region"],
            "conf": dict(context["dag_run"].conf or {}),
        }

    @task.branch
    def pick_report(run: dict) -> str:
        """Weekends get a lighter report: return the id of the task to run next."""
        weekday = pendulum.parse(run["ds"]).day_of_week  # Monday 0 ... Sunday 6
        return "weekend_report" if weekday >= 5 else "weekday_report"

    @task
    def weekday_report(run: dict) -> str:
        return f"full report for {run['ds']} ({run['region']})"

    @task
    def weekend_report(run: dict) -> str:
        return f"short report for {run['ds']} ({run['region']})"

    @task(trigger_rule="none_failed_min_one_success")
    def publish() -> str:
        """Runs after whichever report ran (the skipped one does not block it)."""
        return "published"

    run = describe_run()
    pick_report(run) >> [weekday_report(run), weekend_report(run)] >> publish()


lab01_daily_schedule()
