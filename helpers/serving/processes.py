"""Start and stop the pipeline's stages as processes (``python -m helpers.serving ...``), with their logs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers.platform.config import REPO_ROOT


class StageProcess:
    """One stage process; its stdout and stderr go to ``log`` (appended, so a restart keeps the history)."""

    def __init__(self, stage: str, log: Path, **options: object) -> None:
        self.stage, self.log_path, self.options = stage, Path(log), options
        self.proc: subprocess.Popen | None = None
        self._ready_before = 0

    def start(self) -> StageProcess:
        """Start the process (again, after a kill: a new member of the same group)."""
        cmd = [sys.executable, "-m", "helpers.serving", self.stage]
        for key, value in self.options.items():
            if value is not None:
                cmd += [f"--{key.replace('_', '-')}", str(value)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._ready_before = self.log().count("stage ready")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, cwd=REPO_ROOT)
        return self

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait until the stage printed its ready line (the model is loaded, the client is open).

        Raises:
            RuntimeError: the process exited first (its log says why), or ``timeout_s`` passed.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log().count("stage ready") > self._ready_before:
                return
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"the {self.stage} stage exited before it was ready:\n{self.log()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"the {self.stage} stage was not ready within {timeout_s:.0f} s:\n{self.log()[-2000:]}")

    def metrics_component(self) -> str | None:
        """The Prometheus component (target) name the process announced in its ready line, if it serves metrics."""
        found = re.findall(r"metrics on port \d+ as (\S+)", self.log())
        return found[-1] if found else None

    def kill(self) -> None:
        """SIGKILL: no last commit, no goodbye (what a crash looks like).

        The crash is a drill: the process's Prometheus target is unregistered too (else ``MetricsTargetDown``
        pages for it; a real crash leaves the target, and that alert is how on-call hears of it).
        """
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            component = self.metrics_component()
            if component:
                from helpers.platform.monitoring_services import unregister_target

                unregister_target(component)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM and wait (the stage commits and leaves its group); SIGKILL after ``timeout_s``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode
