"""A DAG file that cannot be imported: the DAG-loading smoke test must report it."""

import pendulum
from airflow.sdk import (
    dag,
    no_such_thing,  # noqa: F401  (deliberate ImportError)
    task,
)


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def missing_import():
    @task
    def never_runs() -> None:
        pass

    never_runs()


missing_import()
