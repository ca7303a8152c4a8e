"""What a DAG run did, as plain data: task states, every try, XComs and timings (:class:`DagRunResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any


@dataclass(frozen=True)
class TaskTry:
    """One earlier, finished try of a task (kept by Airflow when the task was retried)."""

    try_number: int
    state: str
    start_date: datetime | None
    end_date: datetime | None


@dataclass(frozen=True)
class TaskResult:
    """The final state of one task instance (mapped instances are keyed ``task[i]``)."""

    state: str
    try_number: int
    start_date: datetime | None
    end_date: datetime | None
    duration_s: float | None
    earlier_tries: tuple[TaskTry, ...] = ()


@dataclass(frozen=True)
class DagRunResult:
    """What one DAG run did: run state, task instances and the XComs they pushed."""

    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, TaskResult]
    xcoms: dict[str, dict[str, Any]]
    logical_date: datetime | None
    conf: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.state == "success"

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        """Return one XCom value (by default the task's return value); KeyError if absent."""
        return self.xcoms[task_id][key]

    def summary(self) -> str:
        """Return a small table: one line per task with state, try and duration."""
        date_text = self.logical_date.isoformat() if self.logical_date else "none"
        lines = [f"DAG run {self.dag_id} [{self.state}]  logical date {date_text}  ({self.run_id})"]
        width = max((len(task_id) for task_id in self.tasks), default=4)
        for task_id, task in self.tasks.items():
            took = f"{task.duration_s:6.2f} s" if task.duration_s is not None else "      -"
            keys = ", ".join(self.xcoms.get(task_id, {}))
            lines.append(f"  {task_id:<{width}}  {task.state:<15} try {task.try_number}  {took}"
                         + (f"  xcom: {keys}" if keys else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def as_utc(value: datetime | date | str | None) -> datetime:
    """Turn a logical date given as text, date or datetime into an aware UTC datetime."""
    if value is None:
        return datetime.now(timezone.utc)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def state_text(state: Any) -> str:
    """Return an Airflow state enum (or None) as plain text: ``"success"``, ``"none"``."""
    return str(getattr(state, "value", state) or "none")


def collect_result(dag_id: str, run_id: str, state: str, logical_date: datetime | None,
                   conf: dict[str, Any] | None) -> DagRunResult:
    """Read the run's task instances, earlier tries and XComs back from the metadata DB."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def key(task_id: str, map_index: int) -> str:
        return task_id if map_index < 0 else f"{task_id}[{map_index}]"

    def rows(model: Any) -> list[Any]:
        return list(session.scalars(select(model).where(model.dag_id == dag_id,
                                                        model.run_id == run_id)))

    with create_session() as session:
        tries: dict[str, list[TaskTry]] = {}
        for old in sorted(rows(TaskInstanceHistory), key=lambda h: h.try_number):
            tries.setdefault(key(old.task_id, old.map_index), []).append(
                TaskTry(old.try_number, state_text(old.state), old.start_date, old.end_date))
        tis = sorted(rows(TaskInstance), key=lambda ti: (ti.start_date is None, ti.start_date,
                                                         ti.task_id, ti.map_index))
        tasks = {key(ti.task_id, ti.map_index): TaskResult(
            state=state_text(ti.state), try_number=ti.try_number,
            start_date=ti.start_date, end_date=ti.end_date, duration_s=ti.duration,
            earlier_tries=tuple(tries.get(key(ti.task_id, ti.map_index), ())))
            for ti in tis}
        xcoms: dict[str, dict[str, Any]] = {}
        for row in rows(XComModel):
            xcoms.setdefault(key(row.task_id, row.map_index), {})[row.key] = \
                XComModel.deserialize_value(row)
    return DagRunResult(dag_id, run_id, state, tasks, xcoms, logical_date, dict(conf or {}))
