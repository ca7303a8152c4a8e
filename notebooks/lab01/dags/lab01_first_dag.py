"""Lab 01: a first DAG with dependencies and XComs.

``get_orders`` returns a few orders; two tasks use them in parallel (fan-out), and ``report``
waits for both (fan-in). Airflow passes each return value to the next task as an XCom. The
``>>`` line at the end adds one more dependency by hand: ``notify`` runs after ``report`` even
though it takes no data from it.

Run it in the notebook with ``run_dag("dags/lab01_first_dag.py")``, or in docker-compose from the
UI (http://localhost:8080, DAG ``lab01_first_dag``) or ``airflow dags test lab01_first_dag``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="lab01_first_dag",
    schedule=None,  # run only when triggered
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["module05", "lab01"],
)
def lab01_first_dag():
    """Fan out from one extract to two summaries, fan back in to a report, then notify."""

    @task
    def get_orders() -> list[dict]:
        """Return today's orders (a real pipeline would read them from a file or a table)."""
        return [
            {"order_id": 1, "category": "books", "amount": 12.50},
            {"order_id": 2, "category": "toys", "amount": 7.00},
            {"order_id": 3, "category": "books", "amount": 30.25},
        ]

    @task
    def count_orders(orders: list[dict]) -> int:
        """Count the orders."""
        return len(orders)

    @task
    def sum_revenue(orders: list[dict]) -> float:
        """Add up the order amounts."""
        return round(sum(order["amount"] for order in orders), 2)

    @task
    def report(count: int, revenue: float) -> str:
        """Build the line a person would read."""
        return f"{count} orders, revenue {revenue:.2f}"

    @task
    def notify() -> None:
        """Stand-in for an e-mail or chat message: runs only after the report exists."""
        print("report ready")

    orders = get_orders()  # one XCom, read by two tasks
    summary = report(count_orders(orders), sum_revenue(orders))
    summary >> notify()  # an explicit dependency: no data flows, only order


lab01_first_dag()
