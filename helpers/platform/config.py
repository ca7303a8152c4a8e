"""One place for the workbook's configuration: paths, ports and service addresses.

Every value has a working default (the embedded services) and an environment override
(docker-compose sets them for the notebook container). Nothing here touches the disk or the
network: these are plain functions, evaluated when called.

| variable                  | default                              | used by            |
|---------------------------|--------------------------------------|--------------------|
| ``WORKBOOK_STATE``        | ``<repo>/.state``                    | every service      |
| ``KAFKA_BOOTSTRAP_SERVERS`` | embedded broker, ``127.0.0.1:19092`` | Kafka clients    |
| ``WORKBOOK_KAFKA_PORT``   | ``19092`` (controller: port + 1)     | embedded broker    |
| ``WORKBOOK_KAFKA_CLUSTER_PORT`` | Kafka port + 8 (6 ports from it) | Lab 05's 3 nodes |
| ``SPARK_MASTER``          | ``local[*]``                         | :func:`get_spark`  |
| ``AIRFLOW_HOME``          | ``<state>/airflow``                  | Airflow helpers    |
| ``WORKBOOK_JARS``         | ``<state>/jars``                     | Maven jar cache    |
| ``WORKBOOK_COURSE``       | ``<state>/course``                   | nbgrader steps     |
| ``WORKBOOK_API_PORT``     | ``19080``                            | embedded events API|
| ``WORKBOOK_API_URL``      | embedded API, ``http://127.0.0.1:19080`` | extract clients |
| ``WORKBOOK_API_TOKEN``    | ``module05-local-token``             | events API auth    |
| ``WORKBOOK_CAPSTONE``     | ``<state>/capstone``                 | Lab 05 data, models|
| ``MLFLOW_TRACKING_URI``   | ``sqlite:///<capstone>/mlflow.db``   | MLflow registry    |
| ``WORKBOOK_DVC_REMOTE``   | ``<capstone>/dvc-remote``            | DVC's local remote |
| ``WORKBOOK_PROMETHEUS_PORT`` / ``PROMETHEUS_URL`` | ``19090`` / embedded | Lab 05 metrics |
| ``WORKBOOK_ALERTMANAGER_PORT`` / ``ALERTMANAGER_URL`` | ``19093`` / embedded | Lab 05 alerts |
| ``WORKBOOK_PUSHGATEWAY_PORT`` / ``PUSHGATEWAY_URL`` | ``19091`` / embedded | Lab 05 batch metrics |
| ``WORKBOOK_ALERT_RECEIVER_PORT`` | ``19094``                     | Alertmanager -> alert sink |
| ``WORKBOOK_OPENSEARCH_PORT`` / ``OPENSEARCH_URL`` | ``19200`` (transport 19300) / embedded | Lab 05 logs |
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parents[2]
"""The workbook's root folder (the one holding ``helpers/`` and ``notebooks/``)."""

DEFAULT_KAFKA_PORT = 19092
DEFAULT_API_PORT = 19080
DEFAULT_API_TOKEN = "module05-local-token"  # a local, 127.0.0.1-only service: not a secret


def state_dir() -> Path:
    """Return the git-ignored folder that holds all generated state (not created here)."""
    return Path(os.environ.get("WORKBOOK_STATE", REPO_ROOT / ".state")).resolve()


def monitoring_state_dir() -> Path:
    """Return the folder holding the monitoring services' homes (``WORKBOOK_MONITORING_STATE``, default the state
    folder): the test suite gives each xdist worker its own, beside its own ports."""
    value = os.environ.get("WORKBOOK_MONITORING_STATE", "").strip()
    return Path(value).resolve() if value else state_dir()


def kafka_port() -> int:
    """Return the port of the embedded broker's client listener."""
    return int(os.environ.get("WORKBOOK_KAFKA_PORT", DEFAULT_KAFKA_PORT))


def kafka_cluster_port() -> int:
    """Return the first client port of Lab 05's 3-node cluster (nodes: +0..+2, controllers: +3..+5).

    Derived from the single broker's port (+8), so the suite's cluster (29100 with the suite's broker on
    29092) and a learner's (19100) never collide; ``WORKBOOK_KAFKA_CLUSTER_PORT`` wins.
    """
    return int(os.environ.get("WORKBOOK_KAFKA_CLUSTER_PORT", kafka_port() + 8))


def external_kafka() -> str | None:
    """Return ``KAFKA_BOOTSTRAP_SERVERS`` when the learner points us at their own broker."""
    value = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    return value or None


def kafka_bootstrap_servers() -> str:
    """Return the bootstrap servers every Kafka client should use.

    ``KAFKA_BOOTSTRAP_SERVERS`` wins (docker-compose sets it to ``kafka:9092``); otherwise the
    embedded broker on ``127.0.0.1``.
    """
    return external_kafka() or f"127.0.0.1:{kafka_port()}"


def spark_master() -> str:
    """Return the Spark master URL: ``SPARK_MASTER`` or ``local[*]``."""
    return os.environ.get("SPARK_MASTER", "").strip() or "local[*]"


def airflow_home() -> Path:
    """Return ``AIRFLOW_HOME``: the environment's value or ``<state>/airflow``."""
    value = os.environ.get("AIRFLOW_HOME", "").strip()
    return Path(value).resolve() if value else state_dir() / "airflow"


def course_dir() -> Path:
    """Return the folder of nbgrader's generated steps (``WORKBOOK_COURSE`` or ``<state>/course``)."""
    value = os.environ.get("WORKBOOK_COURSE", "").strip()
    return Path(value).resolve() if value else state_dir() / "course"


def jars_dir() -> Path:
    """Return the cache of jars resolved from Maven Central (``WORKBOOK_JARS`` or ``<state>/jars``)."""
    value = os.environ.get("WORKBOOK_JARS", "").strip()
    return Path(value).resolve() if value else state_dir() / "jars"


def data_dir() -> Path:
    """Return the git-ignored folder for generated datasets (``data/generated``)."""
    return Path(os.environ.get("WORKBOOK_DATA", REPO_ROOT / "data" / "generated")).resolve()


def fixtures_dir() -> Path:
    """Return the folder of small committed fixtures used by tests."""
    return REPO_ROOT / "data" / "fixtures"


def api_port() -> int:
    """Return the port of the embedded events API (Lab 05's extract source)."""
    return int(os.environ.get("WORKBOOK_API_PORT", DEFAULT_API_PORT))


def external_api() -> str | None:
    """Return ``WORKBOOK_API_URL`` when the events API runs elsewhere (docker-compose's ``api``)."""
    value = os.environ.get("WORKBOOK_API_URL", "").strip().rstrip("/")
    return value or None


def api_url() -> str:
    """Return the events API's base URL: ``WORKBOOK_API_URL`` or the embedded one on 127.0.0.1."""
    return external_api() or f"http://127.0.0.1:{api_port()}"


def api_token() -> str:
    """Return the bearer token the events API expects (``WORKBOOK_API_TOKEN``)."""
    return os.environ.get("WORKBOOK_API_TOKEN", "").strip() or DEFAULT_API_TOKEN


def capstone_dir() -> Path:
    """Return Lab 05's folder for snapshots, features and models (``WORKBOOK_CAPSTONE`` or ``<state>/capstone``)."""
    value = os.environ.get("WORKBOOK_CAPSTONE", "").strip()
    return Path(value).resolve() if value else state_dir() / "capstone"


def mlflow_tracking_uri() -> str:
    """Return MLflow's tracking and registry URI.

    ``MLFLOW_TRACKING_URI`` wins (docker-compose points it at its MLflow server); otherwise the
    embedded registry: SQLite at ``<capstone>/mlflow.db``.
    """
    value = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    return value or f"sqlite:///{capstone_dir() / 'mlflow.db'}"


def mlflow_artifacts_dir() -> Path:
    """Return where the embedded registry keeps model artifacts: ``<capstone>/mlartifacts``."""
    return capstone_dir() / "mlartifacts"


def dvc_remote_dir() -> Path:
    """Return DVC's local remote for the capstone's data (``WORKBOOK_DVC_REMOTE`` or ``<capstone>/dvc-remote``)."""
    value = os.environ.get("WORKBOOK_DVC_REMOTE", "").strip()
    return Path(value).resolve() if value else capstone_dir() / "dvc-remote"


# --- Lab 05 part 3, monitoring: Prometheus, Alertmanager, Pushgateway, the alert receiver, OpenSearch ---
# Each is embedded on 127.0.0.1 by default (helpers.platform.monitoring_services, opensearch_node); the
# ``*_URL`` variables point the helpers at docker-compose's services instead (nothing is started then).
MONITORING_DEFAULT_PORTS: dict[str, int] = {
    "prometheus": 19090, "pushgateway": 19091, "alertmanager": 19093, "alert_receiver": 19094,
    "opensearch": 19200, "opensearch_transport": 19300,
}


def monitoring_port(service: str) -> int:
    """Return the embedded ``service``'s port: ``WORKBOOK_<SERVICE>_PORT`` or its default.

    ``service`` is a key of :data:`MONITORING_DEFAULT_PORTS`; ``opensearch_transport`` defaults to the HTTP
    port + 100 when only ``WORKBOOK_OPENSEARCH_PORT`` is set.
    """
    if service not in MONITORING_DEFAULT_PORTS:
        raise ValueError(f"unknown monitoring service {service!r}; expected one of {sorted(MONITORING_DEFAULT_PORTS)}")
    value = os.environ.get(f"WORKBOOK_{service.upper()}_PORT", "").strip()
    if value:
        return int(value)
    if service == "opensearch_transport" and os.environ.get("WORKBOOK_OPENSEARCH_PORT", "").strip():
        return monitoring_port("opensearch") + 100
    return MONITORING_DEFAULT_PORTS[service]


def external_monitoring_url(service: str) -> str | None:
    """Return ``<SERVICE>_URL`` (e.g. ``PROMETHEUS_URL=http://prometheus:9090``) when set, else None."""
    value = os.environ.get(f"{service.upper()}_URL", "").strip().rstrip("/")
    return value or None


def monitoring_url(service: str) -> str:
    """Return the base URL of ``service``: ``<SERVICE>_URL`` or the embedded one on 127.0.0.1."""
    return external_monitoring_url(service) or f"http://127.0.0.1:{monitoring_port(service)}"


def metrics_hosts() -> tuple[str, str]:
    """Return ``(bind, advertised)`` hosts of the components' ``/metrics`` endpoints.

    Both ``127.0.0.1`` by default; docker-compose's notebook container sets ``WORKBOOK_METRICS_BIND=0.0.0.0``
    and ``WORKBOOK_METRICS_HOST=workbook`` so the Prometheus container can scrape it.
    """
    bind = os.environ.get("WORKBOOK_METRICS_BIND", "").strip() or "127.0.0.1"
    return bind, os.environ.get("WORKBOOK_METRICS_HOST", "").strip() or "127.0.0.1"
