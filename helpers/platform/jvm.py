"""Java and Maven plumbing shared by the embedded Kafka broker and Spark's Kafka connector.

Jars are resolved from Maven Central by the small poms in ``helpers/jvm/`` into the git-ignored
state folder, once; later calls find them there and return at once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from helpers.platform.config import jars_dir

POM_DIR = Path(__file__).resolve().parent / "poms"
MIN_JAVA = 17

JAVA_HINT = (
    "install a Java 17+ runtime (Debian/Ubuntu: `sudo apt-get install openjdk-17-jre-headless`; "
    "macOS: `brew install openjdk@17`; Windows: Temurin 17 from adoptium) or set JAVA_HOME to one"
)


class JavaNotFound(RuntimeError):
    """Raised when no Java 17+ runtime can be found."""


def java_executable() -> str | None:
    """Return the ``java`` to use: ``$JAVA_HOME/bin/java`` if set, else ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def java_version(java: str | None = None) -> tuple[int, str] | None:
    """Return ``(major, full version string)`` of a Java runtime, or None if there is none."""
    java = java or java_executable()
    if not java:
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    return parse_java_version(out.stderr + out.stdout)


def parse_java_version(text: str) -> tuple[int, str] | None:
    """Return ``(major, full version)`` from ``java -version`` output (``1.8.0_381`` is Java 8), or None."""
    match = re.search(r'version "([^"]+)"', text)
    if not match:
        return None
    full = match.group(1)
    parts = full.split(".")
    digits = re.match(r"\d+", parts[1] if parts[0] == "1" and len(parts) > 1 else parts[0])
    return (int(digits.group()), full) if digits else None


def require_java() -> str:
    """Return a Java 17+ executable or raise :class:`JavaNotFound` with an actionable hint."""
    java = java_executable()
    found = java_version(java) if java else None
    if not found:
        raise JavaNotFound(f"No Java runtime found: {JAVA_HINT}.")
    if found[0] < MIN_JAVA:
        raise JavaNotFound(f"Java {found[1]} at {java} is too old (need {MIN_JAVA}+): {JAVA_HINT}.")
    return java  # type: ignore[return-value]


def pom_property(pom: str, name: str) -> str:
    """Return ``<name>`` from the ``<properties>`` of ``helpers/jvm/<pom>``."""
    text = (POM_DIR / pom).read_text()
    match = re.search(rf"<{re.escape(name)}>([^<]+)</{re.escape(name)}>", text)
    if not match:
        raise KeyError(f"{name} not found in {pom}")
    return match.group(1).strip()


def resolve_jars(pom: str, name: str) -> Path:
    """Copy the runtime jars of ``helpers/jvm/<pom>`` into ``<jars_dir>/<name>`` once.

    Args:
        pom: file name of the pom in ``helpers/jvm``.
        name: folder name under :func:`helpers.platform.config.jars_dir` (include the version).

    Returns:
        The folder holding the jars.
    """
    target = jars_dir() / name
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = shutil.which("mvn")
    if not mvn:
        raise RuntimeError(
            "Maven (`mvn`) is needed once to fetch the jars from Maven Central: install it "
            "(Debian/Ubuntu: `sudo apt-get install maven`; macOS: `brew install maven`)."
        )
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = [mvn, "-q", "-B", "-f", str(POM_DIR / pom), "dependency:copy-dependencies",
           f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"Maven could not resolve {pom}:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    marker.write_text("ok\n")
    return target
