"""The grading kernel's sandbox: a Jupyter kernelspec whose kernel runs inside ``bwrap`` (bubblewrap).

A submission is arbitrary code, and it runs in the grading kernel. With bubblewrap available, the
grader installs the kernelspec ``workbook-sandbox`` (:func:`install`) and grades with it. Its argv
runs this file (stdlib only, as a script) with the connection file; it execs
``bwrap ... python -m ipykernel_launcher -f CONNECTION_FILE``, where the kernel sees:

- read-only: ``/usr`` (Python's and Java's libraries), a short list of ``/etc`` files (no
  ``shadow``, no ssh keys), the virtualenv and the Python it was made from, the ``helpers``
  package, ``data/fixtures``, the jar cache and the generated datasets, and the connection file;
- writable: the notebook's folder (nbgrader's ``autograded/<student>/<assignment>/``: the
  submission's copy and the lab's files) and the grading run's state folder (``WORKBOOK_STATE``:
  Airflow home, Spark's warehouse, the lab's files; one per grading slot), with ``HOME`` and
  ``/tmp`` inside it;
- nothing else: not ``notebooks/`` (solutions, hidden tests), not ``autograder/`` (rubrics), not
  the gradebook, not the other submissions, not the instructor's home. Its own user and PID
  namespaces (it cannot see or signal the grader; it dies with it), a cleared environment (only
  the variables the labs need), the host network (the kernel's ZMQ sockets and the live Kafka
  broker on 127.0.0.1).

``WORKBOOK_SANDBOX_RO`` and ``WORKBOOK_SANDBOX_RW`` (paths separated by ``:``) add folders a lab
needs (a lab using a service folder outside the state folder); ``WORKBOOK_SANDBOX=off`` grades
without the sandbox. Without bubblewrap the grader warns loudly and grades unsandboxed
(autograder/README.md, "Isolation").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

KERNEL_NAME = "workbook-sandbox"
INSTALL_HINT = "apt-get update && apt-get install -y bubblewrap"
ETC = ("alternatives", "ca-certificates", "ca-certificates.conf", "fonts", "gai.conf", "host.conf", "hosts",
       "java-17-openjdk", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "mime.types",
       "nsswitch.conf", "os-release", "protocols", "resolv.conf", "services", "ssl", "timezone")
ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "PYTHONHASHSEED", "JAVA_HOME", "JAVA_TOOL_OPTIONS",
            "KAFKA_BOOTSTRAP_SERVERS", "MPLBACKEND", "PYDEVD_DISABLE_FILE_VALIDATION")
ENV_PREFIXES = ("WORKBOOK_", "AIRFLOW", "SPARK_", "PYSPARK_", "LC_", "MLFLOW_", "GX_", "DVC_")
USER = "grader"
UID = 1000


def bwrap() -> str | None:
    """The ``bwrap`` executable, or None."""
    return shutil.which("bwrap")


def probe() -> str:
    """``""`` when a sandbox can start here, else why not (missing bwrap, user namespaces refused...)."""
    exe = bwrap()
    if exe is None:
        return f"bubblewrap is not installed (install it with: {INSTALL_HINT})"
    if os.environ.get("WORKBOOK_SANDBOX", "").lower() in ("0", "off", "no", "false"):
        return "WORKBOOK_SANDBOX=off"
    try:
        proc = subprocess.run([exe, "--unshare-user", "--unshare-pid", "--die-with-parent", "--ro-bind", "/", "/",
                               "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap could not start: {error}"
    return "" if proc.returncode == 0 else f"bwrap cannot create namespaces here: {proc.stderr.strip()[:200]}"


def install(folder: Path, readonly: list[Path]) -> Path:
    """Write the ``workbook-sandbox`` kernelspec and its plan into ``folder``.

    Args:
        folder: becomes ``<folder>/kernels/workbook-sandbox/``; put ``folder`` first on
            ``JUPYTER_PATH`` so Jupyter finds it.
        readonly: folders and files the kernel may read (they exist; the virtualenv and Python are
            added here).

    Returns:
        The kernelspec folder.
    """
    spec = folder / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    venv_python = Path(sys.prefix).resolve() / "bin" / "python"
    paths = {str(Path(p).resolve()) for p in [*readonly, sys.prefix, sys.base_prefix] if Path(p).exists()}
    (spec / "passwd").write_text(f"root:x:0:0::/root:/bin/sh\n{USER}:x:{UID}:{UID}::/home/{USER}:/bin/sh\n"
                                 "nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n")
    (spec / "group").write_text(f"root:x:0:\n{USER}:x:{UID}:\nnogroup:x:65534:\n")
    plan = {"python": str(venv_python), "readonly": sorted(paths), "passwd": str(spec / "passwd"),
            "group": str(spec / "group")}
    (spec / "plan.json").write_text(json.dumps(plan, indent=1))
    kernel = {"argv": [sys.executable, str(Path(__file__).resolve()), str(spec / "plan.json"), "{connection_file}"],
              "display_name": "Python 3 (grading sandbox)", "language": "python", "interrupt_mode": "message",
              "metadata": {"debugger": False}}
    (spec / "kernel.json").write_text(json.dumps(kernel, indent=1))
    return spec


def _ro(path: str) -> list[str]:
    return ["--ro-bind", path, path] if os.path.exists(path) else []


def command(plan: dict, connection_file: str, extra: list[str], cwd: str, env: dict[str, str]) -> list[str]:
    """The ``bwrap`` command line running the kernel for ``connection_file`` in ``cwd``."""
    state = Path(env.get("WORKBOOK_STATE") or Path(cwd) / ".grading-state")
    home, tmp = state / "sandbox" / "home", state / "sandbox" / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)  # a fresh /tmp per kernel
    for folder in (home, tmp):
        folder.mkdir(parents=True, exist_ok=True)
    args = [bwrap() or "bwrap", "--unshare-user", "--uid", str(UID), "--gid", str(UID), "--unshare-pid",
            "--unshare-ipc", "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv",
            "--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev"]
    for name in ("bin", "lib", "lib64", "sbin"):
        link = Path("/") / name
        if link.is_symlink():
            args += ["--symlink", os.readlink(link), str(link)]
        else:
            args += _ro(str(link))
    args += ["--bind", str(tmp), "/tmp", "--bind", str(home), f"/home/{USER}"]  # first: later binds may lie in /tmp
    for name in ETC:
        args += _ro(f"/etc/{name}")
    args += ["--ro-bind", plan["passwd"], "/etc/passwd", "--ro-bind", plan["group"], "/etc/group"]
    for path in plan["readonly"]:
        args += _ro(path)
    for path in filter(None, env.get("WORKBOOK_SANDBOX_RO", "").split(os.pathsep)):
        args += _ro(str(Path(path).resolve()))
    writable = [state, Path(cwd), *[Path(p) for p in env.get("WORKBOOK_SANDBOX_RW", "").split(os.pathsep) if p]]
    for path in writable:
        path.mkdir(parents=True, exist_ok=True)
        args += ["--bind", str(path.resolve()), str(path.resolve())]
    args += ["--ro-bind", connection_file, connection_file, "--chdir", cwd]
    kept = {k: v for k, v in env.items() if k in ENV_KEEP or k.startswith(ENV_PREFIXES)}
    kept.update(HOME=f"/home/{USER}", USER=USER, LOGNAME=USER, TMPDIR="/tmp", PYTHONNOUSERSITE="1",
                WORKBOOK_SANDBOXED="1", WORKBOOK_STATE=str(state))
    kept.setdefault("PATH", "/usr/bin:/bin")
    kept["PATH"] = os.pathsep.join([str(Path(plan["python"]).parent), kept["PATH"]])
    for key, value in sorted(kept.items()):
        args += ["--setenv", key, value]
    return [*args, plan["python"], "-m", "ipykernel_launcher", "-f", connection_file, *extra]


def main(argv: list[str]) -> None:
    """Kernelspec entry point: ``sandbox.py PLAN.json CONNECTION_FILE [kernel args...]``; execs bwrap."""
    plan = json.loads(Path(argv[1]).read_text())
    args = command(plan, argv[2], argv[3:], os.getcwd(), dict(os.environ))
    os.execv(args[0], args)


if __name__ == "__main__":
    main(sys.argv)
