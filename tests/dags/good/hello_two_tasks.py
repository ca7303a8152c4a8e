"""Two TaskFlow tasks passing a value through XCom: the smallest useful DAG."""

import pendulum
from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["workbook", "test"],
)
def hello_two_tasks():
    @task
    def extract_orders() -> list[dict]:
        return [{"order_id": 1, "amount": 12.5}, {"order_id": 2, "amount": 7.5}]

    @task
    def total_revenue(orders: list[dict]) -> float:
        return sum(order["amount"] for order in orders)

    total_revenue(extract_orders())


hello_two_tasks()
