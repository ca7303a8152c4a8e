"""Grading slots: one worker's scratch course, state folder, ports and sandbox for parallel grading.

A slot (``<course>/.parallel/worker-<i>/``) holds a copy of the gradebook, its own ``submitted/``,
``autograded/`` and ``feedback/`` folders, and a ``state/`` folder (Airflow home, alert database, lab files)
that the kernels of the submission graded there write, so two submissions share no SQLite file and no folder.
:func:`worker_env` is the environment a slot's worker and kernel get (own state, own service ports, the shared
broker and datasets); :func:`prepare_sandbox` installs the bubblewrap kernelspec a sandboxed run uses, and
:func:`reset_state` / :func:`mirror_data` give each sandboxed submission a clean slot.
Used by :mod:`autograder.parallel` (and by ``benchmarks/grading.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config

from autograder.course import SOURCE_DIR, course_dir, load_config


@dataclass
class Slot:
    """One worker's scratch course and services; at most one submission at a time."""

    folder: Path
    config: Config

    @property
    def course(self) -> Path:
        return self.folder / "course"


def make_slots(config: Config, jobs: int) -> list[Slot]:
    """Create ``jobs`` scratch courses, each starting from a copy of the course's gradebook.

    The copy is taken while nothing writes the gradebook (release has finished, no worker runs yet).
    A slot's ``state/`` folder is kept between runs (Airflow's database there is migrated once).
    """
    main_db = course_dir(config) / "gradebook.db"
    slots = []
    for number in range(1, jobs + 1):
        folder = course_dir(config) / ".parallel" / f"worker-{number}"
        for old in folder.iterdir() if folder.is_dir() else []:  # the last run's course, specs, logs
            if old.name != "state":
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        (folder / "course").mkdir(parents=True)
        shutil.copyfile(main_db, folder / "course" / "gradebook.db")
        slot_config = load_config(course_dir=folder / "course", timeout=config.Execute.timeout)
        slot_config.CourseExecute.setup_timeout = config.CourseExecute.setup_timeout
        slots.append(Slot(folder, slot_config))
    return slots


def worker_env(slot: Slot, kafka: str, sandbox: Path | None = None) -> dict[str, str]:
    """The environment of a slot's worker (its kernel inherits it): the slot's own state folder.

    The labs write under the state folder (``<state>/lab02/``, Spark's warehouse, a DuckDB file, a GX
    project, Airflow's and the alert sink's SQLite files): each slot gets its own, so two students'
    kernels never write the same file. The jar cache and the generated datasets stay shared (written
    once, atomically, with the same content), and so does the Kafka broker (``kafka``: every lab names
    its topics uniquely), reached as an external broker. An Airflow database that is not SQLite (an
    instructor's Postgres) is shared as it is.

    With ``sandbox`` (the folder holding the ``workbook-sandbox`` kernelspec), Jupyter finds that
    kernelspec first, and the datasets come from the slot's mirror of the shared ones
    (:func:`mirror_data`): the sandboxed kernel reads the shared files and writes only its own.
    """
    from helpers.platform import config as workbook

    state = slot.folder / "state"
    env = {**os.environ, "WORKBOOK_STATE": str(state), "WORKBOOK_COURSE": str(slot.course),
           "WORKBOOK_JARS": str(workbook.jars_dir()), "WORKBOOK_DATA": str(workbook.data_dir()),
           "WORKBOOK_ALERTS_DB": str(state / "alerts" / "alerts.db"), "KAFKA_BOOTSTRAP_SERVERS": kafka}
    if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:").startswith("sqlite:"):
        home = state / "airflow"
        env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
                   AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}")
    env.update(slot_ports(slot))
    if sandbox is not None:  # the kernel writes only in the slot: move the state folder's other paths there
        main_state = workbook.state_dir()
        for key, value in list(env.items()):
            prefix = "sqlite:///" if value.startswith("sqlite:///") else ""
            path = Path(value.removeprefix(prefix))
            if (key.startswith("WORKBOOK_") or key == "MLFLOW_TRACKING_URI") and path.is_absolute() \
                    and key not in ("WORKBOOK_STATE", "WORKBOOK_COURSE", "WORKBOOK_JARS", "WORKBOOK_DATA") \
                    and path.resolve().is_relative_to(main_state) and not path.resolve().is_relative_to(state.resolve()):
                env[key] = prefix + str(state / path.resolve().relative_to(main_state))
        env["JUPYTER_PATH"] = os.pathsep.join([str(sandbox), *filter(None, env.get("JUPYTER_PATH", "").split(os.pathsep))])
        env["WORKBOOK_DATA"] = str(state / "data")
    return env


SLOT_PORT_VARIABLES = ("WORKBOOK_API_PORT", "WORKBOOK_PROMETHEUS_PORT", "WORKBOOK_PUSHGATEWAY_PORT",
                       "WORKBOOK_ALERTMANAGER_PORT", "WORKBOOK_ALERT_RECEIVER_PORT", "WORKBOOK_OPENSEARCH_PORT")
"""Services a lab's kernel starts for itself (Lab 05's events API and monitoring): one set of ports per slot."""


def slot_ports(slot: Slot) -> dict[str, str]:
    """The slot's own ports for the services its kernels start (chosen free once, kept in the slot folder).

    A kernel's ``start_api()`` or ``start_monitoring()`` must not meet a service another slot, the suite
    or the instructor runs on the default port: a sandboxed kernel cannot see that process (its own PID
    namespace), so it could neither reuse nor replace it and the lab's setup cell would fail. The same
    slot keeps its ports from one submission to the next.
    """
    from helpers.platform.ports import free_port

    path = slot.folder / "ports.json"
    try:
        ports = json.loads(path.read_text())
    except (OSError, ValueError):
        ports = {}
    if set(ports) != set(SLOT_PORT_VARIABLES):
        chosen: set[int] = set()
        ports = {}
        for name in SLOT_PORT_VARIABLES:
            port = free_port()
            while port in chosen or port + 100 in chosen:  # OpenSearch's transport is its HTTP port + 100
                port = free_port()
            chosen.add(port)
            ports[name] = str(port)
        slot.folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ports, indent=1))
    return ports


def mirror_data(shared: Path, target: Path) -> None:
    """Make ``target`` a fresh mirror of ``shared``: real folders, each file a symlink to the shared one.

    The sandbox binds ``shared`` read-only, so a kernel reads the cached datasets but cannot change
    them for the next learner; a dataset it generates lands in ``target`` and is gone with the next
    submission.
    """
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in sorted(shared.rglob("*")) if shared.is_dir() else []:
        copy = target / path.relative_to(shared)
        if path.is_dir():
            copy.mkdir(exist_ok=True)
        elif not path.name.startswith("."):
            copy.symlink_to(path)


def reset_state(slot: Slot) -> None:
    """Before a sandboxed submission: empty the slot's state folder but Airflow's (its migrated database).

    What one submission's kernel wrote there (lab files, Spark's warehouse, /tmp, HOME) is not seen
    by the next one graded in the same slot.
    """
    state = slot.folder / "state"
    for path in state.iterdir() if state.is_dir() else []:
        if path.name != "airflow":
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def prepare_sandbox(config: Config, assignments: set[str], echo: bool = True) -> Path | None:
    """Install the ``workbook-sandbox`` kernelspec for this run, or warn loudly why grading is unsandboxed.

    Also resolves, here and trusted, what a sandboxed kernel may only read: Spark's connector jars.

    Returns:
        The folder to put first on ``JUPYTER_PATH``, or None (no sandbox).
    """
    import helpers
    from autograder import sandbox
    from helpers.platform import config as workbook

    why = sandbox.probe()
    if why:
        print(f"WARNING: grading WITHOUT the sandbox: {why}. Each submission's code runs with your user's rights "
              "and can read notebooks/ (solutions, hidden tests), the gradebook and other submissions. "
              f"Install bubblewrap ({sandbox.INSTALL_HINT}) before grading real submissions.", file=sys.stderr, flush=True)
        return None
    sources = [p.read_text() for a in assignments for p in (SOURCE_DIR / a).glob("*.ipynb")]
    if any("get_spark" in text for text in sources):
        from helpers.spark.session import connector_jars

        connector_jars()
    folder = course_dir(config) / ".parallel" / "sandbox"
    readonly = [Path(helpers.__file__).parent, workbook.fixtures_dir(), workbook.jars_dir(), workbook.data_dir()]
    sandbox.install(folder, [p for p in readonly if p.exists()])
    if echo:
        print(f"grading kernels run in the bubblewrap sandbox ({sandbox.KERNEL_NAME})", flush=True)
    return folder
