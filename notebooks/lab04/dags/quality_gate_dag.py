"""Lab 04: a pipeline that refuses a bad batch.

``quality_gate`` validates the batch file named in the run's configuration with a saved expectation
suite (``helpers.quality.gate.run_gate``, the same check as ``python -m helpers.quality gate``). If too few
expectations pass, the task fails with the failing expectations in its error, ``publish_batch`` never
runs, the run is marked failed, and the failure callback sends an alert to the course alert sink
(``helpers.alerts``). Run it from the notebook with::

    run_dag("dags/quality_gate_dag.py", conf={"data": "<batch.csv>", "suite": "<suite.json>"})
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

ALERT_SOURCE = "lab04.dag.quality_gate"


def alert_on_failure(context) -> None:
    """Failure callback: record which task failed in which run, and why, in the course alert sink."""
    from helpers.alerts.sink import send_alert

    ti = context["task_instance"]
    send_alert(ALERT_SOURCE, f"{ti.dag_id}.{ti.task_id} failed in run {context['run_id']}",
               severity="error",
               details={"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": context["run_id"],
                        "conf": dict(context["dag_run"].conf or {}),
                        "error": str(context.get("exception", ""))[:2000]})


@dag(
    dag_id="lab04_quality_gate",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 0, "on_failure_callback": alert_on_failure},
    tags=["module05", "lab04"],
)
def lab04_quality_gate():
    """Validate a batch, and publish it only if it passes the quality gate."""

    @task
    def quality_gate() -> dict:
        """Run the saved suite on the batch; fail (no retry) when the gate says no."""
        from helpers.quality.gate import run_gate
        from helpers.quality.suites import GateInputError

        conf = get_current_context()["dag_run"].conf or {}
        if not conf.get("data") or not conf.get("suite"):
            raise AirflowFailException('trigger with conf={"data": <batch file>, "suite": <suite JSON>}')
        try:
            result = run_gate(conf["data"], conf["suite"], float(conf.get("threshold", 100.0)))
        except GateInputError as exc:
            raise AirflowFailException(str(exc)) from exc
        print(result.summary())
        if not result.passed:
            raise AirflowFailException("quality gate failed: " + "; ".join(result.failing))
        return {"data": result.data, "rows": result.rows, "success_percent": result.success_percent}

    @task
    def publish_batch(gate: dict) -> str:
        """Hand the validated batch to the next step (here: report it)."""
        return f"published {gate['rows']:,} rows of {gate['data']}"

    publish_batch(quality_gate())


lab04_quality_gate()
