"""Lab 00: the smallest useful pipeline, to check that Airflow runs.

Two tasks written with the TaskFlow API: ``extract_orders`` returns a few orders and
``summarise_orders`` receives them (Airflow passes the value through an XCom) and returns a summary.
The notebook runs it with ``helpers.airflow.runner.run_dag("dags/hello_pipeline.py")``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="hello_pipeline",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["module05", "lab00"],
)
def hello_pipeline():
    """Extract three orders, then summarise them."""

    @task
    def extract_orders() -> list[dict]:
        """Return the orders to summarise (a real pipeline would read a file or a table)."""
        return [
            {"order_id": 1, "category": "books", "amount": 12.50},
            {"order_id": 2, "category": "toys", "amount": 7.00},
            {"order_id": 3, "category": "books", "amount": 30.25},
        ]

    @task
    def summarise_orders(orders: list[dict]) -> dict:
        """Count the orders and add up their amounts."""
        return {"orders": len(orders), "revenue": round(sum(o["amount"] for o in orders), 2)}

    summarise_orders(extract_orders())


hello_pipeline()
