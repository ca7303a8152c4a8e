"""docker-compose.yml: pinned images that match the lock, and services that can reach each other.

No Docker engine is needed: the file is parsed and checked the way a learner's `docker compose up`
would fail (an unpinned image, a version skew with the notebooks, a Kafka listener the notebook
container cannot reach). When the docker compose plugin is installed, the file is also validated
by `docker compose config`.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from helpers.platform.config import REPO_ROOT
from helpers.platform.jvm import pom_property

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"


def _default(value: object) -> str:
    """Interpolate ``${VAR:-default}`` as compose does when VAR is unset (the learner's default)."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", str(value))


def _env(service: dict) -> dict[str, str]:
    """Return a service's environment, defaults interpolated (list or mapping form)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: _default(value) for key, value in env.items()}


def _image(service: dict) -> tuple[str, str]:
    """Split a service's ``image`` into ``(name, tag)``; the tag is ``""`` when missing."""
    image = service.get("image", "")
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # no tag: "repo/name" or "host:port/name"
        return image, ""
    return name, tag


def _published(service: dict) -> dict[int, tuple[str, int]]:
    """Return ``{container port: (host ip, host port)}`` of the service's short-syntax ports."""
    published = {}
    for entry in service.get("ports", []):
        parts = str(entry).split("/")[0].split(":")
        ip, host, container = (["0.0.0.0", *parts] if len(parts) == 2 else parts)
        published[int(container)] = (ip, int(host))
    return published


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """Parse ``NAME://host:port,...`` into ``{NAME: (host, port)}``."""
    result = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        result[name] = (host, int(port))
    return result


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def test_every_service_runs_an_explicitly_tagged_image(services):
    """Check that no service floats on `latest`: each image names a version tag."""
    assert services, "docker-compose.yml defines no service"
    for name, service in services.items():
        assert "image" in service or "build" in service, f"{name} has neither image nor build"
        image, tag = _image(service)
        assert tag, f"{name}: image {image!r} has no tag, so Docker would pull `latest`"
        assert tag != "latest", f"{name}: pin {image} to a version, not `latest`"


def test_built_image_is_the_workbook_dockerfile(services):
    """Check that services built locally use docker/workbook.Dockerfile with a small context."""
    built = {name: s["build"] for name, s in services.items() if "build" in s}
    assert set(built) >= {"workbook", "spark-master", "spark-worker"}
    for name, build in built.items():
        dockerfile = REPO_ROOT / build["context"] / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
        assert ignore.is_file(), f"{name}: without {ignore.name} the build context includes .venv"
        patterns = [l.strip() for l in ignore.read_text().splitlines() if l.strip() and l[0] != "#"]
        assert patterns[0] == "*", "the build context should exclude everything but the lock"


def test_kafka_image_matches_the_embedded_broker_version(services):
    """Check that the containerised broker runs the Kafka version the embedded broker uses."""
    name, tag = _image(services["kafka"])
    assert name == "apache/kafka"
    assert tag == pom_property("kafka-broker.pom.xml", "kafka.version")


def test_airflow_image_matches_the_lock(services, lock):
    """Check that every Airflow container runs the apache-airflow version and Python of the lock."""
    airflow = {n: s for n, s in services.items() if _image(s)[0] == "apache/airflow"}
    assert set(airflow) >= {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"}
    python = _workbook_python()
    for name, service in airflow.items():
        assert _image(service)[1] == f"{lock['apache-airflow']}-python{python}", (
            f"{name}: the image must be apache/airflow:<requirements.txt version>-python{python}")


def _workbook_python() -> str:
    """Return the Python ``major.minor`` of docker/workbook.Dockerfile's base image."""
    text = (REPO_ROOT / "docker" / "workbook.Dockerfile").read_text()
    match = re.search(r"^FROM python:(\d+\.\d+)[-\w.]*$", text, re.M)
    assert match, "docker/workbook.Dockerfile should start FROM python:<major.minor>-..."
    return match.group(1)


def test_workbook_image_installs_the_lock_on_the_locked_python(lock):
    """Check that the notebook image is built from requirements.txt on the lock's Python."""
    text = (REPO_ROOT / "docker" / "workbook.Dockerfile").read_text()
    header = (REPO_ROOT / "requirements.txt").read_text().splitlines()[0]
    assert f"Python {_workbook_python()}" in header, f"the lock says {header!r}"
    assert re.search(r"^COPY requirements\.txt ", text, re.M)
    assert re.search(r"pip install -r \S*requirements\.txt", text)
    assert "openjdk-17" in text, "Spark 4 needs Java 17"


def test_spark_cluster_runs_the_notebook_image(services, lock):
    """Check that Spark's master and worker run the pinned pyspark with the notebook's Python.

    Executors refuse Python UDFs from a driver of another Python minor version, so the cluster
    runs the notebook's own image rather than apache/spark (Ubuntu's python 3.10).
    """
    workbook = services["workbook"]["image"]
    for name in ("spark-master", "spark-worker"):
        assert services[name]["image"] == workbook, f"{name} must run {workbook}"
    assert f"spark{lock['pyspark']}" in _image(services["workbook"])[1], (
        "name the pyspark version in the image tag, so an upgrade builds a new image")


def test_workbook_finds_kafka_on_the_container_listener(services):
    """Check that the notebook container's KAFKA_BOOTSTRAP_SERVERS is the broker's in-network address."""
    kafka_env = _env(services["kafka"])
    advertised = _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    bound = _listeners(kafka_env["KAFKA_LISTENERS"])
    internal = [name for name, (host, _) in advertised.items() if host == "kafka"]
    assert len(internal) == 1, f"advertise exactly one listener as kafka:PORT, got {advertised}"
    port = advertised[internal[0]][1]
    assert bound[internal[0]][1] == port, "the internal listener must bind the port it advertises"
    assert _env(services["workbook"])["KAFKA_BOOTSTRAP_SERVERS"] == f"kafka:{port}"


def test_kafka_host_listener_is_published_on_its_advertised_port(services):
    """Check that a program on the laptop can reach localhost:PORT, the address the broker hands out."""
    kafka = services["kafka"]
    env = _env(kafka)
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    bound = _listeners(env["KAFKA_LISTENERS"])
    host_side = [name for name, (host, _) in advertised.items() if host == "localhost"]
    assert len(host_side) == 1, f"advertise exactly one listener as localhost:PORT, got {advertised}"
    port = advertised[host_side[0]][1]
    container_port = bound[host_side[0]][1]
    published = _published(kafka)
    assert container_port in published, f"publish the {host_side[0]} listener's port {container_port}"
    assert published[container_port][1] == port, (
        f"clients are told localhost:{port}, so the host port must be {port}")


def test_kafka_kraft_settings_are_consistent(services):
    """Check the KRaft combined-mode settings a single broker needs to start."""
    env = _env(services["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    bound = _listeners(env["KAFKA_LISTENERS"])
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(bound) <= set(protocols), "every listener needs a security protocol"
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in bound and controller not in _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:{bound[controller][1]}"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in bound
    assert env.get("CLUSTER_ID"), "the apache/kafka image refuses to start KRaft without CLUSTER_ID"
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR"):
        assert env[key] == "1", f"{key} must be 1 on a single broker"
    assert "healthcheck" in services["kafka"]


def test_workbook_points_spark_at_the_master(services):
    """Check that SPARK_MASTER names the master service and the port it listens on."""
    command = services["spark-master"]["command"]
    port = command[command.index("--port") + 1]
    url = f"spark://spark-master:{port}"
    assert _env(services["workbook"])["SPARK_MASTER"] == url
    assert url in services["spark-worker"]["command"], "the worker must register with the same master"


def test_workbook_environment_for_the_helpers(services):
    """Check the variables helpers/platform/config.py reads and the ports the learner opens."""
    env = _env(services["workbook"])
    volumes = {str(v).split(":")[1] for v in services["workbook"]["volumes"]}
    assert env["WORKBOOK_STATE"].startswith(tuple(volumes)), "state must live on the mounted repo"
    assert env["AIRFLOW_HOME"].startswith("/"), "AIRFLOW_HOME must be a path inside the container"
    assert 8888 in _published(services["workbook"])


def test_airflow_3_services_share_one_configuration(services):
    """Check the Airflow 3 settings every component needs (executor, API URL, JWT secret, DAGs)."""
    names = ("airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor")
    envs = {name: _env(services[name]) for name in names}
    secrets = {env.get("AIRFLOW__API_AUTH__JWT_SECRET") for env in envs.values()}
    assert len(secrets) == 1 and None not in secrets, "all components must share one JWT secret"
    for name, env in envs.items():
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert int(env["AIRFLOW__CORE__PARALLELISM"]) <= 4, f"{name}: keep parallelism laptop-sized"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in services[name]["volumes"]}
        dags = env["AIRFLOW__CORE__DAGS_FOLDER"]
        root = next((target for target in mounts if dags.startswith(target + "/")), None)
        assert root and mounts[root] == ".", f"{name}: the DAGs folder must be inside the mounted repo"
        assert (REPO_ROOT / dags[len(root) + 1:]).is_dir(), f"{dags} maps to no folder of the repo"
    assert envs["airflow-init"].get("_AIRFLOW_DB_MIGRATE") == "true"
    assert envs["airflow-init"].get("_AIRFLOW_WWW_USER_CREATE") == "true"
    for name in names[1:]:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
    assert 8080 in _published(services["airflow-apiserver"])


def test_dependencies_exist_and_wait_for_health(services):
    """Check that every depends_on names a service, with a healthcheck when health is awaited."""
    for name, service in services.items():
        depends = service.get("depends_on", {})
        for target, spec in (depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends)):
            assert target in services, f"{name} depends on unknown service {target}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}'s health, which it lacks"


def test_services_have_memory_limits_and_local_only_ports(services):
    """Check that every service is capped in memory and publishes ports on 127.0.0.1 only, once."""
    seen: dict[int, str] = {}
    for name, service in services.items():
        assert "mem_limit" in service, f"{name} has no mem_limit"
        for ip, host_port in _published(service).values():
            assert ip == "127.0.0.1", f"{name} publishes port {host_port} on {ip}, beyond this machine"
            assert host_port not in seen, f"{name} and {seen.get(host_port)} both publish {host_port}"
            seen[host_port] = name


def test_docker_compose_config_accepts_the_file():
    """Check the file with `docker compose config`, as `docker compose up` would read it."""
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("the docker CLI is not installed")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed (`docker compose version` fails)")
    done = subprocess.run([docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr


def test_workbook_serves_the_student_notebooks(services):
    """Check that, as with `make lab`, the container opens released notebooks, not the sources."""
    command = " ".join(services["workbook"]["command"])
    assert "autograder.release" in command, "release the student notebooks before starting JupyterLab"
    assert "root_dir=/workbook/.state/course/release" in command, (
        "JupyterLab's root must be the release folder: /workbook/notebooks holds the solutions")
    assert "export JUPYTER_CONFIG_PATH=$$(python -m helpers.platform.jupyter --write-config" in command, (
        "expected the container's JupyterLab to read the learners' config (no nbgrader instructor menus or "
        "formgrader, no news pop-up), as `make lab` does: export JUPYTER_CONFIG_PATH from "
        f"`python -m helpers.platform.jupyter --write-config FOLDER` before `jupyter lab`; the command is {command}")


def test_events_api_serves_the_helpers_app_where_clients_look(services):
    """Check that `api` runs the helpers' FastAPI app with uvicorn and that its clients find it."""
    import importlib

    api = services["api"]
    command = api["command"]
    assert command[0] == "uvicorn" and "--factory" in command, "serve the app factory with uvicorn"
    module, _, factory = command[1].partition(":")
    assert callable(getattr(importlib.import_module(module), factory, None)), f"{command[1]} is no factory"
    port = int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0", "bind every interface inside the container"
    assert api["image"] == services["workbook"]["image"], "run the notebook image (same helpers, same lock)"
    assert port in _published(api), f"publish the API's port {port} for programs on the laptop"
    assert "healthcheck" in api, "the notebook waits for the API's health"
    token = _env(api)["WORKBOOK_API_TOKEN"]
    for name in ("workbook", "airflow-scheduler"):
        env = _env(services[name])
        assert env.get("WORKBOOK_API_URL") == f"http://api:{port}", f"{name} must reach the API at api:{port}"
        assert env.get("WORKBOOK_API_TOKEN") == token, f"{name} must send the token the API expects"


def test_mlflow_server_is_where_the_registry_clients_look(services):
    """Check that `mlflow` serves the registry (the lock's MLflow, in the notebook image) to the notebook and Airflow."""
    mlflow = services["mlflow"]
    command = " ".join(mlflow["command"])
    assert mlflow["image"] == services["workbook"]["image"], "run the notebook image (the lock's mlflow)"
    assert "mlflow server" in command and "--port 5000" in command and "--serve-artifacts" in command, command
    assert "mlflow:5000" in command, "allow the service name as a Host header (MLflow 3 refuses unknown hosts)"
    assert 5000 in _published(mlflow) and "healthcheck" in mlflow, "publish the UI and declare a health check"
    for name in ("workbook", "airflow-scheduler"):
        assert _env(services[name]).get("MLFLOW_TRACKING_URI") == "http://mlflow:5000", (
            f"{name} must log and register models on the mlflow service")
