"""One SparkSession per process, tuned for a 2-core laptop, with the Kafka connector on its classpath.

    >>> from helpers.spark import get_spark
    >>> spark = get_spark()          # doctest: +SKIP  (about 5 s the first time, instant after)

``SPARK_MASTER`` (docker-compose: ``spark://spark-master:7077``) replaces the default ``local[*]``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.platform import jvm
from helpers.platform.config import spark_master, state_dir

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

POM = "spark-kafka.pom.xml"
_session: SparkSession | None = None

# Defaults for a 2-core, few-GiB laptop; every key can be overridden with get_spark(config=...).
LAPTOP_DEFAULTS: dict[str, str] = {
    "spark.sql.shuffle.partitions": "8",          # default 200 makes tiny tasks on 2 cores
    "spark.default.parallelism": "4",
    "spark.driver.memory": os.environ.get("WORKBOOK_SPARK_DRIVER_MEMORY", "3g"),
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.showConsoleProgress": "false",      # notebooks get tqdm or nothing, not \r spam
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.streaming.forceDeleteTempCheckpointLocation": "true",
}


# Spark's console logging, kept for what a learner should read: warnings from Spark, nothing from the
# shutdown hook that fails to delete temp folders when a kernel is killed.
LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
logger.shutdown.name = org.apache.spark.util.ShutdownHookManager
logger.shutdown.level = off
logger.nativeio.name = org.apache.hadoop.util.NativeCodeLoader
logger.nativeio.level = error
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = error
"""


def connector_version() -> str:
    """Return the version of ``spark-sql-kafka-0-10`` pinned in ``helpers/jvm/spark-kafka.pom.xml``."""
    return jvm.pom_property(POM, "spark.version")


def connector_jars() -> list[Path]:
    """Resolve Spark's Kafka connector once and return the jars Spark does not already ship.

    Raises:
        RuntimeError: if the connector's version differs from the installed pyspark.
    """
    import pyspark

    version = connector_version()
    if pyspark.__version__ != version:
        raise RuntimeError(
            f"pyspark {pyspark.__version__} is installed but the Kafka connector is pinned to "
            f"{version}: they must match exactly. Reinstall with `make install` (requirements.txt)."
        )
    folder = jvm.resolve_jars(POM, f"spark-kafka-{version}")
    shipped = {_artifact(p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    return sorted(p for p in folder.glob("*.jar") if _artifact(p.name) not in shipped)


def _artifact(jar_name: str) -> str:
    """``kafka-clients-3.9.2.jar`` -> ``kafka-clients``."""
    return re.sub(r"-\d[\w.\-]*\.jar$", "", jar_name)


def get_spark(app_name: str = "module05", config: dict[str, str] | None = None) -> SparkSession:
    """Return this process's SparkSession, building it on the first call.

    Args:
        app_name: name shown in the Spark UI (only used by the first call).
        config: extra Spark settings for the first call (later calls return the same session).

    Returns:
        The shared SparkSession (``local[*]`` unless ``SPARK_MASTER`` is set).
    """
    global _session
    if _session is not None and not _session.sparkContext._jsc.sc().isStopped():  # type: ignore[union-attr]
        return _session
    jvm.require_java()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    master = spark_master()
    settings = dict(LAPTOP_DEFAULTS)
    settings["spark.jars"] = ",".join(str(p) for p in connector_jars())
    settings["spark.sql.warehouse.dir"] = str(state_dir() / "spark" / "warehouse")
    log_conf = state_dir() / "spark" / "log4j2.properties"
    settings["spark.driver.extraJavaOptions"] = (f"-Dderby.system.home={state_dir() / 'spark'} "
                                                 f"-Dlog4j2.configurationFile={log_conf}")
    if master.startswith("local"):
        settings["spark.driver.host"] = "127.0.0.1"
        settings["spark.driver.bindAddress"] = "127.0.0.1"
    settings.update(config or {})
    (state_dir() / "spark").mkdir(parents=True, exist_ok=True)
    log_conf.write_text(LOG4J2)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    _session = builder.getOrCreate()
    _session.sparkContext.setLogLevel("WARN")
    return _session


def stop_spark() -> None:
    """Stop this process's SparkSession (the next :func:`get_spark` builds a new one)."""
    global _session
    if _session is not None:
        _session.stop()
        _session = None
