"""Lab 05: the batch training pipeline (reference DAG; instructor-only).

Files named ``reference_*`` are never released to learners (nbgrader's ``CourseDirectory.ignore``) nor
copied into a grading folder: this is the answer to Lab 05a's Task 6. Its tasks pass the reference
answers of Tasks 1, 2, 4 and 5.1 (:mod:`autograder.reference.lab05a`) to :mod:`helpers.pipeline.steps`,
where a learner's DAG passes the learner's functions. ``make capstone`` runs it; compose's scheduler
loads it from the instructor's checkout (the repository is on its ``PYTHONPATH``).

``extract_data >> validate_raw_data >> transform_features >> validate_features >> train_model >> register_model``

- **extract_data** pages through each day of the window from the events API (tenacity retries a 5xx or
  a 429 inside the task; Airflow retries the task when the API stays down), writes one immutable raw
  snapshot per day and DVC-tracks + pushes it. Re-running a date keeps the snapshot: same bytes, same hash.
- **validate_raw_data** / **validate_features** run the GX suites (:mod:`helpers.pipeline.checks`); a bad
  batch fails with ``AirflowFailException`` naming the failing expectations, nothing downstream runs,
  and the failure callback records an alert in the course's alert sink. An empty day skips the rest.
- **transform_features** computes the point-in-time features and the next-hour label with Spark
  (defined once in :mod:`helpers.features.definitions`) into ``features/date=D/features.parquet`` (DVC).
- **train_model** fits on a time split and reports ROC/PR AUC against the prior.
- **register_model** registers the model in MLflow tagged with the data (DVC hashes) and code versions,
  and moves the ``champion`` alias only when it beats the champion on the same holdout.

Monitoring: when ``register_model`` succeeds its success callback pushes the run's metrics (duration,
rows, quality score as a share, the model's metrics) to the Pushgateway under ``job="training"``, and any
failed task pushes ``batch_last_run_success 0`` (:func:`push_run_metrics`): the batch pattern of Prometheus,
read by the rules ``QualityScoreLow`` and ``TrainingStale``. Best-effort: a Pushgateway that does not answer
prints a warning and never fails the run (``PUSHGATEWAY_URL`` in compose; the embedded one otherwise).

XComs stay small: paths, hashes, counts, metrics. Settings come from the run's conf
(:data:`helpers.pipeline.steps.DEFAULTS`), e.g. ``run_dag(path, logical_date="2026-01-07", conf={"days": 7})``.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

ALERT_SOURCE = "lab05.training_pipeline"
PUSH_JOB = "training"
"""The Pushgateway job of this DAG's runs (the rule ``TrainingStale`` reads ``job="training"``)."""


def push_run_metrics(context, success: bool = True) -> bool:
    """Callback: push this run's metrics to the Pushgateway (best-effort; True if pushed).

    Duration since the run started, rows extracted, the features gate's quality score (a percent in the
    XCom, a share in Prometheus) and the model's numeric metrics, from the tasks' XComs so far.
    """
    from datetime import datetime, timezone

    from helpers.monitoring.push import try_push_batch_run

    ti, run = context["task_instance"], context["dag_run"]
    extracted = ti.xcom_pull(task_ids="extract_data") or {}
    checked = ti.xcom_pull(task_ids="validate_features") or {}
    trained = ti.xcom_pull(task_ids="train_model") or {}
    started = getattr(run, "start_date", None)
    duration = (datetime.now(timezone.utc) - started).total_seconds() if started else 0.0
    score = checked.get("quality_score")
    metrics = {k: float(v) for k, v in (trained.get("metrics") or {}).items() if isinstance(v, (int, float))}
    return try_push_batch_run(PUSH_JOB, duration_s=max(0.0, duration), rows=int(extracted.get("rows") or 0),
                              quality_score=None if score is None else float(score) / 100.0,
                              model_metrics=metrics or None, success=success)


def alert_on_failure(context) -> None:
    """Failure callback: which task failed in which run, and why, into the course alert sink; a failed run pushed."""
    from helpers.alerts.sink import send_alert

    ti = context["task_instance"]
    send_alert(f"{ALERT_SOURCE}.{ti.task_id}", f"{ti.dag_id}.{ti.task_id} failed in run {context['run_id']}",
               severity="error",
               details={"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": context["run_id"],
                        "error": str(context.get("exception", ""))[:4000]})
    push_run_metrics(context, success=False)


def _reference():
    """The reference answers (instructor-only: ``autograder`` is importable from the repository's root)."""
    from autograder.reference import lab05a

    return lab05a


def _settings():
    from helpers.pipeline.steps import Settings

    context = get_current_context()
    try:
        return Settings.of(context["dag_run"].conf), context["logical_date"]
    except ValueError as err:
        raise AirflowFailException(str(err)) from err


@dag(
    dag_id="lab05_training_pipeline",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "on_failure_callback": alert_on_failure},
    tags=["module05", "lab05"],
)
def lab05_training_pipeline():
    """Train the purchase-in-the-next-hour model from one logical day of API events, gated and versioned."""

    @task(retries=2, retry_delay=timedelta(seconds=2), multiple_outputs=False)
    def extract_data() -> dict:
        """Extract the window's days into immutable snapshots (DVC-tracked); retry while the API is down."""
        from helpers.api.extract import ExtractError
        from helpers.pipeline.steps import extract
        from helpers.versioning.datarepo import VersioningError

        settings, logical_date = _settings()
        try:
            ref = _reference()

            def snapshot(day: str, root, client_id: str) -> dict:
                return ref.extract_snapshot(day, root, client_id=client_id, url=settings["api_url"],
                                            max_attempts=int(settings["max_attempts"]),
                                            backoff_s=float(settings["backoff_s"]), page_size=int(settings["page_size"]))

            return extract(logical_date, settings, snapshot)
        except ExtractError as err:
            if err.retryable:
                raise  # the API may be back for the next try
            raise AirflowFailException(str(err)) from err
        except VersioningError as err:
            raise AirflowFailException(f"the raw snapshot could not be versioned: {err}") from err

    @task(multiple_outputs=False)
    def validate_raw_data(extracted: dict) -> dict:
        """Gate: the raw events must meet every expectation of the raw suite."""
        from helpers.alerts.sink import send_alert
        from helpers.pipeline.steps import EmptyDay, GateFailed, check_raw

        try:
            return check_raw(extracted, _reference().data_quality_score)
        except EmptyDay as err:
            send_alert(f"{ALERT_SOURCE}.validate_raw_data", str(err), severity="warning",
                       details={"days": extracted["days"]})
            raise AirflowSkipException(str(err)) from err
        except GateFailed as err:
            raise AirflowFailException(str(err)) from err

    @task(multiple_outputs=False)
    def transform_features(extracted: dict, raw: dict) -> dict:
        """Spark: point-in-time features + next-hour label, written per logical date and DVC-tracked."""
        from helpers.pipeline.steps import build_features
        from helpers.versioning.datarepo import VersioningError

        _, logical_date = _settings()
        try:
            return build_features(logical_date, extracted)
        except VersioningError as err:
            raise AirflowFailException(f"the feature set could not be versioned: {err}") from err

    @task(multiple_outputs=False)
    def validate_features(built: dict, raw: dict) -> dict:
        """Gate: the feature set must meet every expectation of the features suite; the run's quality score."""
        from helpers.pipeline.steps import GateFailed, check_features

        try:
            return check_features(built, raw, _reference().data_quality_score)
        except GateFailed as err:
            raise AirflowFailException(str(err)) from err

    @task(multiple_outputs=False)
    def train_model(built: dict, checked: dict) -> dict:
        """Fit on a time split; ROC AUC and PR AUC against the prior."""
        from helpers.pipeline.steps import train

        settings, logical_date = _settings()
        try:
            return train(logical_date, built, settings, _reference().split_by_time)
        except ValueError as err:
            raise AirflowFailException(str(err)) from err

    @task(multiple_outputs=False, on_success_callback=push_run_metrics)
    def register_model(trained: dict, extracted: dict, built: dict) -> dict:
        """Register in MLflow with data + code versions; champion only if better on the same holdout."""
        from helpers.pipeline.steps import register
        from helpers.registry.tracking import RegistryUnavailable

        settings, _ = _settings()
        try:
            ref = _reference()
            return register(trained, extracted, built, settings, ref.split_by_time, ref.should_promote)
        except RegistryUnavailable as err:
            raise AirflowFailException(str(err)) from err

    extracted = extract_data()
    raw = validate_raw_data(extracted)
    built = transform_features(extracted, raw)
    checked = validate_features(built, raw)
    trained = train_model(built, checked)
    register_model(trained, extracted, built)


lab05_training_pipeline()
