"""Fault injection for pipeline exercises: task callables that fail on purpose, the same way every time.

A retry demo needs a task that fails a known number of times and then succeeds; an alerting demo
needs one that always fails. These callables read the running task's ``try_number`` from Airflow,
so they behave the same in the embedded runner (``helpers.airflow.runner.run_dag``) and in the
docker-compose Airflow, with no state kept between tries.

Example::

    PythonOperator(task_id="fetch_orders", python_callable=flaky(fail_times=2), retries=2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def current_try_number() -> int:
    """Return the try number (1, 2, ...) of the Airflow task running this code.

    Raises:
        RuntimeError: called outside a running Airflow task.
    """
    from airflow.sdk import get_current_context

    try:
        return int(get_current_context()["ti"].try_number)
    except RuntimeError as exc:  # no context: not inside a task
        raise RuntimeError("current_try_number() works only inside a running Airflow task") from exc


def flaky(fail_times: int, error: type[Exception] = ConnectionError,
          message: str = "the upstream API timed out", result: Any = "ok") -> Callable[[], Any]:
    """Return a task callable that fails on its first ``fail_times`` tries, then returns ``result``.

    Args:
        fail_times: how many tries fail (0: never); with ``retries >= fail_times`` the task succeeds.
        error: the exception class raised on a failing try.
        message: the exception text (the try number is appended).
        result: what a successful try returns (it becomes the task's XCom).
    """
    if fail_times < 0:
        raise ValueError("fail_times must be >= 0")

    def flaky_call() -> Any:
        attempt = current_try_number()
        if attempt <= fail_times:
            raise error(f"{message} (injected fault, try {attempt} of {fail_times} failing tries)")
        return result

    flaky_call.__name__ = flaky_call.__qualname__ = f"flaky_{fail_times}"
    return flaky_call


def always_fails(message: str = "the report service is down", error: type[Exception] = RuntimeError
                 ) -> Callable[[], Any]:
    """Return a task callable that raises ``error(message)`` on every try (retries cannot save it)."""

    def failing_call() -> Any:
        raise error(f"{message} (injected fault, try {current_try_number()})")

    failing_call.__name__ = failing_call.__qualname__ = "always_fails"
    return failing_call
