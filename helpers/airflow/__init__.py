"""Embedded Airflow: one-time setup, an in-process DAG runner with results, and fault injection."""
